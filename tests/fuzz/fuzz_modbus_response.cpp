// libFuzzer target: the Modbus decoders that read bytes from the wire (MBAP header, RTU frames and
// their size prediction, read and write responses as a master sees them, any request as the
// simulator sees it). They must reject garbage without
// crashing, reading out of bounds or returning registers that disagree with the request.

#include "modbus/codec/mbap.hpp"
#include "modbus/codec/pdu.hpp"
#include "modbus/codec/rtu.hpp"

#include <cstdlib>

using namespace firegate::modbus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  // The first three bytes choose the request the response is checked against.
  const read_request request{
      (data[0] & 1) ? function_code::read_input_registers : function_code::read_holding_registers, 0,
      static_cast<std::uint16_t>(1 + ((data[1] << 8 | data[2]) % max_read_registers))};
  std::span<const std::uint8_t> rest(data + 3, size - 3);

  auto regs = decode_read_response(request, rest);
  if (regs && regs->size() != request.count) std::abort();
  // Into a buffer kept from the last input, as a bus's poll decodes: the same verdict and registers,
  // and nothing left of an earlier response after a refused one.
  static std::vector<std::uint16_t> kept;
  const auto refused = decode_read_response(request, rest, kept);
  if (static_cast<bool>(refused) == regs.has_value()) std::abort();
  if (regs ? kept != *regs : (refused != regs.error() || !kept.empty())) std::abort();

  if (rest.size() >= mbap_header_size) {
    auto header = decode_mbap(rest.first<mbap_header_size>());
    if (header && (header->pdu_size() < 1 || header->pdu_size() > max_pdu_size)) std::abort();
  }

  auto bits = decode_read_bits_response({function_code::read_coils, 0, request.count}, rest);
  if (bits && bits->size() != request.count) std::abort();

  const write_request write{function_code::write_multiple_registers, 0x10, {1, 2}, {}};
  (void)check_write_response(write, rest);

  // RTU: a frame that passes its CRC must re-encode to the same bytes; the size predicted from a
  // frame's head must be a size an RTU frame can have.
  if (auto frame = decode_rtu_adu(rest)) {
    if (encode_rtu_adu(frame->unit, frame->pdu) != std::vector<std::uint8_t>(rest.begin(), rest.end()))
      std::abort();
  }
  if (auto predicted = rtu_response_size(rest); predicted && *predicted) {
    if (**predicted < 5 || **predicted > max_rtu_adu_size) std::abort();
  }
  if (auto predicted = rtu_request_size(rest); predicted && *predicted) {
    if (**predicted < 8 || **predicted > max_rtu_adu_size) std::abort();
  }

  // Server side: whatever decodes must encode back to a response without trouble.
  if (auto req = decode_request(rest)) {
    std::vector<std::uint8_t> out;
    if (const auto* w = std::get_if<write_request>(&*req)) {
      if (w->registers.size() > max_write_registers || w->bits.size() > max_write_bits) std::abort();
      encode_write_response(*w, out);
      if (out.size() != 5) std::abort();
    } else if (std::get<read_request>(*req).count == 0) {
      std::abort();
    }
  }
  return 0;
}
