// libFuzzer target: the Modbus decoders that read bytes from the wire (MBAP header, read response as
// a master sees it, read request as the simulator sees it). They must reject garbage without
// crashing, reading out of bounds or returning registers that disagree with the request.

#include "modbus/codec/mbap.hpp"
#include "modbus/codec/pdu.hpp"

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

  if (rest.size() >= mbap_header_size) {
    auto header = decode_mbap(rest.first<mbap_header_size>());
    if (header && (header->pdu_size() < 1 || header->pdu_size() > max_pdu_size)) std::abort();
  }

  auto req = decode_read_request(rest);
  if (req && (req->count == 0 || req->count > max_read_registers)) std::abort();
  return 0;
}
