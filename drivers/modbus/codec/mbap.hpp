#pragma once
// Modbus TCP framing: the 7-byte MBAP header (Modbus Messaging on TCP/IP Implementation Guide
// v1.0b §3.1.3). Pure functions, no I/O.

#include "pdu.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace firegate::modbus {

inline constexpr std::size_t mbap_header_size = 7;
/// §4.4.1: the largest Modbus TCP ADU is 260 bytes, so a PDU is at most 253.
inline constexpr std::size_t max_pdu_size = 253;

struct mbap_header {
  std::uint16_t transaction_id{0};
  std::uint16_t protocol_id{0};  ///< always 0 for Modbus
  std::uint16_t length{0};       ///< bytes that follow: unit id + PDU
  std::uint8_t unit_id{0};
  /// Size of the PDU that follows the header.
  std::size_t pdu_size() const { return length - 1u; }
};

/// Builds a whole ADU: header followed by `pdu`.
std::vector<std::uint8_t> encode_adu(std::uint16_t transaction_id, std::uint8_t unit_id,
                                     std::span<const std::uint8_t> pdu);
/// The same into `out` (its contents replaced, its memory kept for the next one).
void encode_adu(std::uint16_t transaction_id, std::uint8_t unit_id, std::span<const std::uint8_t> pdu,
                std::vector<std::uint8_t>& out);

/// Decodes and checks a header: protocol id 0 and a length that leaves room for 1–253 PDU bytes.
result<mbap_header> decode_mbap(std::span<const std::uint8_t, mbap_header_size> bytes);

}  // namespace firegate::modbus
