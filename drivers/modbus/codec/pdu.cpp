#include "pdu.hpp"

#include "../modbus_error.hpp"

#include <algorithm>

namespace firegate::modbus {
namespace {

void put_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

std::uint16_t get_u16(std::span<const std::uint8_t> in, std::size_t at) {
  return static_cast<std::uint16_t>((in[at] << 8) | in[at + 1]);
}

std::size_t packed_size(std::size_t bits) {
  return (bits + 7) / 8;
}

/// §4.3: bits packed LSB first, the first bit in the lowest bit of the first byte.
void put_bits(std::vector<std::uint8_t>& out, const std::vector<bool>& bits) {
  const auto first = out.size();
  out.resize(first + packed_size(bits.size()), 0);
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (bits[i]) out[first + i / 8] = static_cast<std::uint8_t>(out[first + i / 8] | (1u << (i % 8)));
  }
}

std::vector<bool> get_bits(std::span<const std::uint8_t> in, std::size_t count) {
  std::vector<bool> bits(count);
  for (std::size_t i = 0; i < count; ++i) bits[i] = ((in[i / 8] >> (i % 8)) & 1u) != 0;
  return bits;
}

std::uint16_t read_limit(function_code f) {
  return is_bit_read(f) ? max_read_bits : max_read_registers;
}

/// The part of response checking every function shares (§7): an exception answer maps to its code;
/// any other function code than the one asked is a mismatch. Returns no error for a normal answer.
std::error_code check_header(function_code function, std::span<const std::uint8_t> pdu) {
  if (pdu.empty()) return modbus_errc::malformed_frame;
  const auto fc = static_cast<std::uint8_t>(function);
  if (pdu[0] == (fc | 0x80)) {
    if (pdu.size() != 2) return modbus_errc::malformed_frame;
    const std::uint8_t code = pdu[1];
    // §7: codes 1–8, 10 and 11 are defined; 9 is not.
    if (code < 1 || code > 11 || code == 9) return modbus_errc::unknown_exception;
    return {code, modbus_category()};
  }
  if (pdu[0] != fc) return modbus_errc::function_mismatch;
  return {};
}

}  // namespace

bool is_bit_read(function_code f) {
  return f == function_code::read_coils || f == function_code::read_discrete_inputs;
}

bool is_register_read(function_code f) {
  return f == function_code::read_holding_registers || f == function_code::read_input_registers;
}

void encode_request(const read_request& r, std::vector<std::uint8_t>& out) {
  out.push_back(static_cast<std::uint8_t>(r.function));
  put_u16(out, r.address);
  put_u16(out, r.count);
}

void encode_request(const write_request& w, std::vector<std::uint8_t>& out) {
  out.push_back(static_cast<std::uint8_t>(w.function));
  put_u16(out, w.address);
  switch (w.function) {
    case function_code::write_single_coil:
      put_u16(out, !w.bits.empty() && w.bits[0] ? coil_on : coil_off);
      break;
    case function_code::write_single_register:
      put_u16(out, w.registers.empty() ? 0 : w.registers[0]);
      break;
    case function_code::write_multiple_coils:
      put_u16(out, static_cast<std::uint16_t>(w.bits.size()));
      out.push_back(static_cast<std::uint8_t>(packed_size(w.bits.size())));
      put_bits(out, w.bits);
      break;
    case function_code::write_multiple_registers:
      put_u16(out, static_cast<std::uint16_t>(w.registers.size()));
      out.push_back(static_cast<std::uint8_t>(w.registers.size() * 2));
      for (auto r : w.registers) put_u16(out, r);
      break;
    default:
      break;
  }
}

result<std::vector<std::uint16_t>> decode_read_response(const read_request& request,
                                                        std::span<const std::uint8_t> pdu) {
  std::vector<std::uint16_t> registers;
  if (auto ec = decode_read_response(request, pdu, registers)) return ec;
  return registers;
}

std::error_code decode_read_response(const read_request& request, std::span<const std::uint8_t> pdu,
                                     std::vector<std::uint16_t>& registers) {
  registers.clear();
  if (auto ec = check_header(request.function, pdu)) return ec;
  if (pdu.size() < 2) return make_error_code(modbus_errc::malformed_frame);
  const std::size_t byte_count = pdu[1];
  if (byte_count != static_cast<std::size_t>(request.count) * 2 || pdu.size() != 2 + byte_count) {
    return make_error_code(modbus_errc::byte_count_mismatch);
  }
  registers.resize(request.count);
  for (std::size_t i = 0; i < registers.size(); ++i) registers[i] = get_u16(pdu, 2 + 2 * i);
  return {};
}

result<std::vector<bool>> decode_read_bits_response(const read_request& request,
                                                    std::span<const std::uint8_t> pdu) {
  if (auto ec = check_header(request.function, pdu)) return ec;
  if (pdu.size() < 2) return make_error_code(modbus_errc::malformed_frame);
  const std::size_t byte_count = pdu[1];
  if (byte_count != packed_size(request.count) || pdu.size() != 2 + byte_count) {
    return make_error_code(modbus_errc::byte_count_mismatch);
  }
  return get_bits(pdu.subspan(2), request.count);
}

std::error_code check_write_response(const write_request& request, std::span<const std::uint8_t> pdu) {
  if (auto ec = check_header(request.function, pdu)) return ec;
  if (pdu.size() != 5) return modbus_errc::malformed_frame;
  // §6.5/§6.6: the normal response is an echo of the request; §6.11/§6.12: address and quantity.
  // Either way, the first five bytes of the request.
  std::vector<std::uint8_t> expected;
  encode_request(request, expected);
  expected.resize(5);
  if (!std::equal(expected.begin(), expected.end(), pdu.begin())) return modbus_errc::echo_mismatch;
  return {};
}

result<any_request> decode_request(std::span<const std::uint8_t> pdu) {
  if (pdu.empty()) return make_error_code(modbus_errc::malformed_frame);
  const auto f = static_cast<function_code>(pdu[0]);
  switch (f) {
    case function_code::read_coils:
    case function_code::read_discrete_inputs:
    case function_code::read_holding_registers:
    case function_code::read_input_registers: {
      if (pdu.size() != 5) return make_error_code(modbus_errc::malformed_frame);
      read_request r{f, get_u16(pdu, 1), get_u16(pdu, 3)};
      if (r.count == 0 || r.count > read_limit(f)) return make_error_code(modbus_errc::illegal_data_value);
      return any_request{r};
    }
    case function_code::write_single_coil:
    case function_code::write_single_register: {
      if (pdu.size() != 5) return make_error_code(modbus_errc::malformed_frame);
      write_request w{f, get_u16(pdu, 1), {}, {}};
      const auto value = get_u16(pdu, 3);
      if (f == function_code::write_single_register) {
        w.registers.push_back(value);
      } else if (value == coil_on || value == coil_off) {
        w.bits.push_back(value == coil_on);
      } else {
        return make_error_code(modbus_errc::illegal_data_value);
      }
      return any_request{w};
    }
    case function_code::write_multiple_coils:
    case function_code::write_multiple_registers: {
      if (pdu.size() < 6) return make_error_code(modbus_errc::malformed_frame);
      const auto quantity = get_u16(pdu, 3);
      const std::size_t byte_count = pdu[5];
      const bool coils = f == function_code::write_multiple_coils;
      const auto limit = coils ? max_write_bits : max_write_registers;
      const std::size_t expected = coils ? packed_size(quantity) : quantity * 2u;
      if (quantity == 0 || quantity > limit || byte_count != expected || pdu.size() != 6 + byte_count) {
        return make_error_code(modbus_errc::illegal_data_value);
      }
      write_request w{f, get_u16(pdu, 1), {}, {}};
      if (coils) {
        w.bits = get_bits(pdu.subspan(6), quantity);
      } else {
        for (std::size_t i = 0; i < quantity; ++i) w.registers.push_back(get_u16(pdu, 6 + 2 * i));
      }
      return any_request{w};
    }
  }
  return make_error_code(modbus_errc::illegal_function);
}

void encode_read_response(function_code function, std::span<const std::uint16_t> registers,
                          std::vector<std::uint8_t>& out) {
  out.push_back(static_cast<std::uint8_t>(function));
  out.push_back(static_cast<std::uint8_t>(registers.size() * 2));
  for (auto r : registers) put_u16(out, r);
}

void encode_read_bits_response(function_code function, const std::vector<bool>& bits,
                               std::vector<std::uint8_t>& out) {
  out.push_back(static_cast<std::uint8_t>(function));
  out.push_back(static_cast<std::uint8_t>(packed_size(bits.size())));
  put_bits(out, bits);
}

void encode_write_response(const write_request& w, std::vector<std::uint8_t>& out) {
  const auto first = out.size();
  encode_request(w, out);
  out.resize(first + 5);  // single writes: the whole echo; multiple: address and quantity
}

void encode_exception(std::uint8_t function, std::uint8_t exception_code, std::vector<std::uint8_t>& out) {
  out.push_back(static_cast<std::uint8_t>(function | 0x80));
  out.push_back(exception_code);
}

}  // namespace firegate::modbus
