#include "rtu.hpp"

#include "../modbus_error.hpp"

namespace firegate::modbus {

std::uint16_t crc16(std::span<const std::uint8_t> bytes) {
  std::uint16_t crc = 0xFFFF;
  for (auto b : bytes) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc & 1u) ? static_cast<std::uint16_t>((crc >> 1) ^ 0xA001) : crc >> 1;
  }
  return crc;
}

std::vector<std::uint8_t> encode_rtu_adu(std::uint8_t unit, std::span<const std::uint8_t> pdu) {
  std::vector<std::uint8_t> adu;
  adu.reserve(pdu.size() + 3);
  adu.push_back(unit);
  adu.insert(adu.end(), pdu.begin(), pdu.end());
  const auto crc = crc16(adu);
  adu.push_back(static_cast<std::uint8_t>(crc & 0xFF));
  adu.push_back(static_cast<std::uint8_t>(crc >> 8));
  return adu;
}

result<rtu_frame> decode_rtu_adu(std::span<const std::uint8_t> adu) {
  if (adu.size() < 4 || adu.size() > max_rtu_adu_size) return make_error_code(modbus_errc::malformed_frame);
  const auto body = adu.first(adu.size() - 2);
  const auto received = static_cast<std::uint16_t>(adu[adu.size() - 2] | (adu[adu.size() - 1] << 8));
  if (crc16(body) != received) return make_error_code(modbus_errc::crc_mismatch);
  return rtu_frame{adu[0], body.subspan(1)};
}

result<std::optional<std::size_t>> rtu_response_size(std::span<const std::uint8_t> head) {
  if (head.size() < 2) return std::optional<std::size_t>{};
  const std::uint8_t fc = head[1];
  if (fc & 0x80) return std::optional<std::size_t>{5};  // unit, fc | 0x80, code, CRC
  switch (static_cast<function_code>(fc)) {
    case function_code::read_coils:
    case function_code::read_discrete_inputs:
    case function_code::read_holding_registers:
    case function_code::read_input_registers:
      if (head.size() < 3) return std::optional<std::size_t>{};
      // 125 registers or 2000 bits: 250 data bytes at most. A larger count is noise, not a frame.
      if (head[2] > max_read_data_bytes) return make_error_code(modbus_errc::malformed_frame);
      return std::optional<std::size_t>{std::size_t{5} + head[2]};  // unit, fc, count, data, CRC
    case function_code::write_single_coil:
    case function_code::write_single_register:
    case function_code::write_multiple_coils:
    case function_code::write_multiple_registers:
      return std::optional<std::size_t>{8};
  }
  return make_error_code(modbus_errc::malformed_frame);
}

result<std::optional<std::size_t>> rtu_request_size(std::span<const std::uint8_t> head) {
  if (head.size() < 2) return std::optional<std::size_t>{};
  switch (static_cast<function_code>(head[1])) {
    case function_code::read_coils:
    case function_code::read_discrete_inputs:
    case function_code::read_holding_registers:
    case function_code::read_input_registers:
    case function_code::write_single_coil:
    case function_code::write_single_register:
      return std::optional<std::size_t>{8};  // unit, fc, address, quantity or value, CRC
    case function_code::write_multiple_coils:
    case function_code::write_multiple_registers:
      if (head.size() < 7) return std::optional<std::size_t>{};
      // 123 registers or 1968 coils: 246 data bytes at most, so the frame fits 256 bytes.
      if (head[6] > 2 * max_write_registers) return make_error_code(modbus_errc::malformed_frame);
      return std::optional<std::size_t>{std::size_t{9} + head[6]};  // + address, quantity, count, data
  }
  return make_error_code(modbus_errc::malformed_frame);
}

std::chrono::microseconds rtu_char_time(std::uint32_t baud) {
  return std::chrono::microseconds((11'000'000u + baud - 1) / baud);
}

std::chrono::microseconds rtu_frame_silence(std::uint32_t baud) {
  if (baud > 19200) return std::chrono::microseconds(1750);
  return std::chrono::microseconds((38'500'000u + baud - 1) / baud);  // 3.5 characters × 11 bits
}

}  // namespace firegate::modbus
