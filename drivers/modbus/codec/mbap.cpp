#include "mbap.hpp"

#include "../modbus_error.hpp"

namespace firegate::modbus {

std::vector<std::uint8_t> encode_adu(std::uint16_t transaction_id, std::uint8_t unit_id,
                                     std::span<const std::uint8_t> pdu) {
  std::vector<std::uint8_t> adu;
  encode_adu(transaction_id, unit_id, pdu, adu);
  return adu;
}

void encode_adu(std::uint16_t transaction_id, std::uint8_t unit_id, std::span<const std::uint8_t> pdu,
                std::vector<std::uint8_t>& adu) {
  const auto length = static_cast<std::uint16_t>(pdu.size() + 1);
  adu.clear();
  adu.reserve(mbap_header_size + pdu.size());
  adu.push_back(static_cast<std::uint8_t>(transaction_id >> 8));
  adu.push_back(static_cast<std::uint8_t>(transaction_id & 0xFF));
  adu.push_back(0);
  adu.push_back(0);
  adu.push_back(static_cast<std::uint8_t>(length >> 8));
  adu.push_back(static_cast<std::uint8_t>(length & 0xFF));
  adu.push_back(unit_id);
  adu.insert(adu.end(), pdu.begin(), pdu.end());
}

result<mbap_header> decode_mbap(std::span<const std::uint8_t, mbap_header_size> b) {
  mbap_header h;
  h.transaction_id = static_cast<std::uint16_t>((b[0] << 8) | b[1]);
  h.protocol_id = static_cast<std::uint16_t>((b[2] << 8) | b[3]);
  h.length = static_cast<std::uint16_t>((b[4] << 8) | b[5]);
  h.unit_id = b[6];
  if (h.protocol_id != 0 || h.length < 2 || h.length > max_pdu_size + 1) {
    return make_error_code(modbus_errc::malformed_frame);
  }
  return h;
}

}  // namespace firegate::modbus
