#pragma once
// Modbus PDU codec: pure functions, no I/O. Both sides: the master (firegated) encodes requests and
// decodes responses; the simulator decodes requests and encodes responses.
// Spec: Modbus Application Protocol Specification v1.1b3 (MBAP v1.1b3 §6 for each function).

#include <boost/system/result.hpp>

#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

namespace firegate::modbus {

template <typename T>
using result = boost::system::result<T, std::error_code>;

enum class function_code : std::uint8_t {
  read_holding_registers = 0x03,
  read_input_registers = 0x04,
};

/// §6.3/§6.4: 1 to 125 registers per read.
inline constexpr std::uint16_t max_read_registers = 125;

/// A register read as both sides see it.
struct read_request {
  function_code function{function_code::read_holding_registers};
  std::uint16_t address{0};
  std::uint16_t count{0};
  bool operator==(const read_request&) const = default;
};

/// Appends the request PDU (function, address, count; big-endian) to `out`.
void encode_read_request(const read_request& request, std::vector<std::uint8_t>& out);

/// Decodes a request PDU as a server does. Errors: illegal_function for any other function code,
/// illegal_data_value for a count outside 1–125, malformed_frame for a short PDU.
result<read_request> decode_read_request(std::span<const std::uint8_t> pdu);

/// Appends a normal read response PDU (function, byte count, registers big-endian) to `out`.
void encode_read_response(function_code function, std::span<const std::uint16_t> registers,
                          std::vector<std::uint8_t>& out);

/// Appends an exception response PDU (function | 0x80, code) to `out`.
void encode_exception(std::uint8_t function, std::uint8_t exception_code, std::vector<std::uint8_t>& out);

/// Checks a read response against its request and returns the registers. Written once for every
/// transport: the function code must be echoed, an exception (function | 0x80) maps to its code,
/// and the byte count must be 2 × the requested count and fill the PDU exactly.
result<std::vector<std::uint16_t>> decode_read_response(const read_request& request,
                                                        std::span<const std::uint8_t> pdu);

}  // namespace firegate::modbus
