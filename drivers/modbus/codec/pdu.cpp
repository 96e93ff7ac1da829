#include "pdu.hpp"

#include "../modbus_error.hpp"

namespace firegate::modbus {
namespace {

void put_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

std::uint16_t get_u16(std::span<const std::uint8_t> in, std::size_t at) {
  return static_cast<std::uint16_t>((in[at] << 8) | in[at + 1]);
}

bool is_read_function(std::uint8_t fc) {
  return fc == static_cast<std::uint8_t>(function_code::read_holding_registers) ||
         fc == static_cast<std::uint8_t>(function_code::read_input_registers);
}

}  // namespace

void encode_read_request(const read_request& request, std::vector<std::uint8_t>& out) {
  out.push_back(static_cast<std::uint8_t>(request.function));
  put_u16(out, request.address);
  put_u16(out, request.count);
}

result<read_request> decode_read_request(std::span<const std::uint8_t> pdu) {
  if (pdu.empty()) return make_error_code(modbus_errc::malformed_frame);
  if (!is_read_function(pdu[0])) return make_error_code(modbus_errc::illegal_function);
  if (pdu.size() != 5) return make_error_code(modbus_errc::malformed_frame);
  read_request request{static_cast<function_code>(pdu[0]), get_u16(pdu, 1), get_u16(pdu, 3)};
  if (request.count == 0 || request.count > max_read_registers) {
    return make_error_code(modbus_errc::illegal_data_value);
  }
  return request;
}

void encode_read_response(function_code function, std::span<const std::uint16_t> registers,
                          std::vector<std::uint8_t>& out) {
  out.push_back(static_cast<std::uint8_t>(function));
  out.push_back(static_cast<std::uint8_t>(registers.size() * 2));
  for (auto r : registers) put_u16(out, r);
}

void encode_exception(std::uint8_t function, std::uint8_t exception_code, std::vector<std::uint8_t>& out) {
  out.push_back(static_cast<std::uint8_t>(function | 0x80));
  out.push_back(exception_code);
}

result<std::vector<std::uint16_t>> decode_read_response(const read_request& request,
                                                        std::span<const std::uint8_t> pdu) {
  if (pdu.empty()) return make_error_code(modbus_errc::malformed_frame);
  const auto fc = static_cast<std::uint8_t>(request.function);
  if (pdu[0] == (fc | 0x80)) {
    if (pdu.size() != 2) return make_error_code(modbus_errc::malformed_frame);
    const std::uint8_t code = pdu[1];
    if (code < 1 || code > 11 || code == 9) return make_error_code(modbus_errc::unknown_exception);
    return std::error_code{code, modbus_category()};
  }
  if (pdu[0] != fc) return make_error_code(modbus_errc::function_mismatch);
  if (pdu.size() < 2) return make_error_code(modbus_errc::malformed_frame);
  const std::size_t byte_count = pdu[1];
  if (byte_count != static_cast<std::size_t>(request.count) * 2 || pdu.size() != 2 + byte_count) {
    return make_error_code(modbus_errc::byte_count_mismatch);
  }
  std::vector<std::uint16_t> registers(request.count);
  for (std::size_t i = 0; i < registers.size(); ++i) registers[i] = get_u16(pdu, 2 + 2 * i);
  return registers;
}

}  // namespace firegate::modbus
