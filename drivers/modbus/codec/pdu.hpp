#pragma once
// Modbus PDU codec: pure functions, no I/O, shared by every transport (TCP, RTU, RTU over TCP).
// Both sides: the master (firegated) encodes requests and checks responses; the simulator decodes
// requests and encodes responses. Response checking is written once, here.
// Spec: MODBUS Application Protocol Specification V1.1b3 (section numbers below).

#include <boost/system/result.hpp>

#include <cstdint>
#include <span>
#include <system_error>
#include <variant>
#include <vector>

namespace firegate::modbus {

template <typename T>
using result = boost::system::result<T, std::error_code>;

enum class function_code : std::uint8_t {
  read_coils = 0x01,                ///< §6.1
  read_discrete_inputs = 0x02,      ///< §6.2
  read_holding_registers = 0x03,    ///< §6.3
  read_input_registers = 0x04,      ///< §6.4
  write_single_coil = 0x05,         ///< §6.5
  write_single_register = 0x06,     ///< §6.6
  write_multiple_coils = 0x0F,      ///< §6.11
  write_multiple_registers = 0x10,  ///< §6.12
};

/// Quantity limits per request (§6.1–§6.12).
inline constexpr std::uint16_t max_read_bits = 2000;
inline constexpr std::uint16_t max_read_registers = 125;
inline constexpr std::uint16_t max_write_bits = 1968;
inline constexpr std::uint16_t max_write_registers = 123;

/// §6.5: the only two values a single-coil write may carry.
inline constexpr std::uint16_t coil_on = 0xFF00;
inline constexpr std::uint16_t coil_off = 0x0000;

bool is_bit_read(function_code f);
bool is_register_read(function_code f);

/// A read of bits (fc 01/02) or registers (fc 03/04).
struct read_request {
  function_code function{function_code::read_holding_registers};
  std::uint16_t address{0};
  std::uint16_t count{0};
  bool operator==(const read_request&) const = default;
};

/// A write (fc 05, 06, 15, 16). Single writes carry exactly one value.
struct write_request {
  function_code function{function_code::write_single_register};
  std::uint16_t address{0};
  std::vector<std::uint16_t> registers;  ///< fc 06, 16
  std::vector<bool> bits;                ///< fc 05, 15
  bool operator==(const write_request&) const = default;
};

using any_request = std::variant<read_request, write_request>;

// ---- master side ---------------------------------------------------------------------------

/// Appends the request PDU (big-endian fields) to `out`.
void encode_request(const read_request& r, std::vector<std::uint8_t>& out);
void encode_request(const write_request& w, std::vector<std::uint8_t>& out);

/// Checks a register read response (fc 03/04) against its request and returns the registers:
/// the function echoed, an exception (function | 0x80) mapped to its code, the byte count equal to
/// 2 × count and filling the PDU exactly.
result<std::vector<std::uint16_t>> decode_read_response(const read_request& request,
                                                        std::span<const std::uint8_t> pdu);
/// The same into `registers` (its contents replaced, its memory kept for the next one); on an
/// error it is left empty.
std::error_code decode_read_response(const read_request& request, std::span<const std::uint8_t> pdu,
                                     std::vector<std::uint16_t>& registers);
/// The same for a bit read (fc 01/02): byte count = ceil(count / 8).
result<std::vector<bool>> decode_read_bits_response(const read_request& request,
                                                    std::span<const std::uint8_t> pdu);
/// Checks a write response: fc 05/06 echo address and value, fc 15/16 echo address and quantity.
std::error_code check_write_response(const write_request& request, std::span<const std::uint8_t> pdu);

// ---- server side ---------------------------------------------------------------------------

/// Decodes a request as a server does. Errors are the exception to answer with: illegal_function
/// for an unsupported function code, illegal_data_value for a bad quantity, byte count or coil
/// value; malformed_frame for a PDU too short to answer at all.
result<any_request> decode_request(std::span<const std::uint8_t> pdu);

/// Appends a normal response PDU to `out`.
void encode_read_response(function_code function, std::span<const std::uint16_t> registers,
                          std::vector<std::uint8_t>& out);
void encode_read_bits_response(function_code function, const std::vector<bool>& bits,
                               std::vector<std::uint8_t>& out);
void encode_write_response(const write_request& w, std::vector<std::uint8_t>& out);
/// Appends an exception response PDU (function | 0x80, code) to `out`.
void encode_exception(std::uint8_t function, std::uint8_t exception_code, std::vector<std::uint8_t>& out);

}  // namespace firegate::modbus
