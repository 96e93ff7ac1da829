#pragma once
// Modbus error codes: the protocol's exception codes (Modbus Application Protocol v1.1b3 §7)
// and the transport failures a master sees (timeout, framing, mismatched answers).

#include <string>
#include <string_view>
#include <system_error>

namespace firegate::modbus {

/// Values 1–11 are the exception codes a server returns; from 100 on they are local failures.
enum class modbus_errc {
  illegal_function = 1,
  illegal_data_address = 2,
  illegal_data_value = 3,
  server_device_failure = 4,
  acknowledge = 5,
  server_device_busy = 6,
  negative_acknowledge = 7,
  memory_parity_error = 8,
  gateway_path_unavailable = 10,
  gateway_target_failed = 11,
  timeout = 100,         ///< no answer within the configured timeout
  malformed_frame,       ///< too short, bad length field or protocol id
  function_mismatch,     ///< the answer echoes another function code
  byte_count_mismatch,   ///< byte count disagrees with the request or the frame
  transaction_mismatch,  ///< MBAP transaction id or unit id not the one asked
  unknown_exception,     ///< an exception code outside 1–11
  connection_closed,     ///< the peer closed the connection
  echo_mismatch,         ///< a write response does not echo the address, value or quantity written
  crc_mismatch,          ///< RTU frame whose CRC-16 does not match its content
  readback_mismatch,     ///< a verified write read back a different value
  line_held,             ///< another master holds the serial line (its flock)
  gateway_fault,         ///< the gateway's own code failed while asking (its log says how)
};

const std::error_category& modbus_category() noexcept;

inline std::error_code make_error_code(modbus_errc e) noexcept {
  return {static_cast<int>(e), modbus_category()};
}

/// What a failed exchange was, for the device's counters and its link quality: an error from
/// outside the Modbus category (the socket's, the serial port's) is a connection failure.
enum class failure_kind { timeout, crc, malformed, connection, exception };
failure_kind classify(std::error_code ec) noexcept;

/// Why a write to `table` ("input" or "discrete") cannot be: Modbus has no function that writes
/// input registers or discrete inputs.
std::string read_only_table(std::string_view table);

}  // namespace firegate::modbus

template <>
struct std::is_error_code_enum<firegate::modbus::modbus_errc> : std::true_type {};
