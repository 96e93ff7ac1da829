#pragma once
// Modbus RTU framing: address + PDU + CRC-16, pure functions, no I/O.
// Spec: MODBUS over Serial Line Specification and Implementation Guide V1.02 (sections below).

#include "pdu.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace firegate::modbus {

/// §2.5.1: the largest RTU ADU is 256 bytes (address, 253-byte PDU, CRC).
inline constexpr std::size_t max_rtu_adu_size = 256;
/// The most data a read response carries: 125 registers or 2000 bits, 250 bytes either way.
inline constexpr std::uint8_t max_read_data_bytes = 250;

/// §6.2.2 and Appendix B: CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF). On the wire
/// the low byte goes first.
std::uint16_t crc16(std::span<const std::uint8_t> bytes);

/// Address, PDU, CRC low byte, CRC high byte.
std::vector<std::uint8_t> encode_rtu_adu(std::uint8_t unit, std::span<const std::uint8_t> pdu);

struct rtu_frame {
  std::uint8_t unit{0};
  std::span<const std::uint8_t> pdu;  ///< a view into the frame given to decode_rtu_adu
};

/// Checks size and CRC of a whole frame. Errors: malformed_frame (shorter than 4 bytes or longer
/// than 256), crc_mismatch.
result<rtu_frame> decode_rtu_adu(std::span<const std::uint8_t> adu);

/// RTU has no length field: a master reading a response learns its size from its first bytes.
/// Given what has arrived (unit, function, ...), the whole frame's size in bytes, or nullopt while
/// too few bytes have arrived to tell (read one more and ask again). Exceptions are 5 bytes, reads
/// 5 + byte count, writes 8. An unknown function code, or a byte count over 250, gives
/// malformed_frame.
result<std::optional<std::size_t>> rtu_response_size(std::span<const std::uint8_t> head);

/// The server's side of the same question: a request's frame size from its first bytes. Reads and
/// single writes are 8 bytes; fc 15 and 16 are 9 + their byte count. An unknown function code, or a
/// byte count over 246 (a frame over 256 bytes), gives malformed_frame (a server cannot tell where
/// such a frame ends and must wait for silence).
result<std::optional<std::size_t>> rtu_request_size(std::span<const std::uint8_t> head);
/// Time to send one 11-bit character (start, 8 data, parity or second stop, stop) at `baud`.
std::chrono::microseconds rtu_char_time(std::uint32_t baud);
/// §2.5.1.1: the silence that ends a frame, 3.5 characters; fixed at 1.75 ms above 19200 baud.
std::chrono::microseconds rtu_frame_silence(std::uint32_t baud);

}  // namespace firegate::modbus
