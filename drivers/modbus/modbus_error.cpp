#include "modbus_error.hpp"

#include <string>

namespace firegate::modbus {
namespace {

class modbus_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "modbus"; }

  std::string message(int value) const override {
    switch (static_cast<modbus_errc>(value)) {
      case modbus_errc::illegal_function:
        return "exception 1: illegal function (device does not support it)";
      case modbus_errc::illegal_data_address:
        return "exception 2: illegal data address (check the register map)";
      case modbus_errc::illegal_data_value:
        return "exception 3: illegal data value (the device refused the value or the count: check them "
               "against the register map's range)";
      case modbus_errc::server_device_failure:
        return "exception 4: server device failure";
      case modbus_errc::acknowledge:
        return "exception 5: acknowledge (long operation in progress)";
      case modbus_errc::server_device_busy:
        return "exception 6: server device busy";
      case modbus_errc::negative_acknowledge:
        return "exception 7: negative acknowledge";
      case modbus_errc::memory_parity_error:
        return "exception 8: memory parity error";
      case modbus_errc::gateway_path_unavailable:
        return "exception 10: gateway path unavailable";
      case modbus_errc::gateway_target_failed:
        return "exception 11: gateway target device failed to respond";
      case modbus_errc::timeout:
        return "no response before the timeout";
      case modbus_errc::malformed_frame:
        return "malformed frame";
      case modbus_errc::function_mismatch:
        return "response function code does not match the request";
      case modbus_errc::byte_count_mismatch:
        return "response byte count does not match the request";
      case modbus_errc::transaction_mismatch:
        return "response transaction or unit id does not match the request";
      case modbus_errc::unknown_exception:
        return "exception code outside 1-11";
      case modbus_errc::connection_closed:
        return "connection closed by the device";
      case modbus_errc::line_held:
        return "the serial line is held by another master (a running firegated polling it, or another "
               "program)";
      case modbus_errc::echo_mismatch:
        return "write response does not echo what was written";
      case modbus_errc::crc_mismatch:
        return "CRC mismatch (check wiring, termination and baud rate)";
      case modbus_errc::readback_mismatch:
        return "the value read back differs from the value written (the device refused or changed it)";
      case modbus_errc::gateway_fault:
        return "the gateway failed while asking the device (a fault in the gateway: see its log)";
    }
    return "modbus error " + std::to_string(value);
  }
};

}  // namespace

failure_kind classify(std::error_code ec) noexcept {
  if (ec.category() != modbus_category()) return failure_kind::connection;
  switch (static_cast<modbus_errc>(ec.value())) {
    case modbus_errc::timeout:
      return failure_kind::timeout;
    case modbus_errc::crc_mismatch:
      return failure_kind::crc;
    case modbus_errc::connection_closed:
    case modbus_errc::line_held:
      return failure_kind::connection;
    case modbus_errc::malformed_frame:
    case modbus_errc::function_mismatch:
    case modbus_errc::byte_count_mismatch:
    case modbus_errc::transaction_mismatch:
    case modbus_errc::echo_mismatch:
    case modbus_errc::readback_mismatch:
      return failure_kind::malformed;
    default:  // 1-11 and unknown exception codes
      return failure_kind::exception;
  }
}

const std::error_category& modbus_category() noexcept {
  static const modbus_category_impl instance;
  return instance;
}

std::string read_only_table(std::string_view table) {
  const std::string what = table == "input" ? "input registers" : "discrete inputs";
  return what +
         " are read-only: Modbus has no function that writes them; write to --table holding (registers) "
         "or coil (bits), as the device's register map says";
}

}  // namespace firegate::modbus
