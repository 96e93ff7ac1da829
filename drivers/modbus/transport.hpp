#pragma once
// How a Modbus bus reaches its devices: TCP (MBAP), RTU on a serial line. One protocol core (the
// bus) over a narrow transport, as libmodbus has one core over its backends. The bus owns its
// transport and uses it one request at a time.

#include "codec/pdu.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace firegate::modbus {

class transport {
 public:
  virtual ~transport() = default;
  /// Where it goes, for logs and events: "127.0.0.1:502", "/dev/ttyUSB0".
  virtual std::string endpoint() const = 0;
  virtual bool is_open() const = 0;
  virtual boost::asio::awaitable<std::error_code> open() = 0;
  /// Sends one request PDU to `unit` and returns the response PDU once its framing checks out
  /// (transaction and unit id, CRC). After a failure the transport is either in step for the next
  /// request (a serial line after a timeout or a bad frame: its input flushed) or closed (a TCP
  /// stream, whose position is then unknown; any error of the port or socket itself), and the bus
  /// opens a closed one again.
  virtual boost::asio::awaitable<result<std::vector<std::uint8_t>>> transact(
      std::uint8_t unit, std::span<const std::uint8_t> pdu) = 0;
  /// Sends a write to every unit (address 0, MODBUS over Serial Line §2.2): nobody answers, so it
  /// returns once the request is sent and `turnaround` has passed, the time the units need to act
  /// before the line may carry the next request. RTU only; others answer operation_not_supported.
  virtual boost::asio::awaitable<std::error_code> broadcast(std::span<const std::uint8_t> pdu,
                                                            std::chrono::milliseconds turnaround) {
    (void)pdu;
    (void)turnaround;
    co_return std::make_error_code(std::errc::operation_not_supported);
  }
  /// Cancels any pending operation. Idempotent.
  virtual void close() = 0;
};

}  // namespace firegate::modbus
