#pragma once
// Modbus RTU on a serial line (MODBUS over Serial Line V1.02): address + PDU + CRC-16, frames
// separated by 3.5 characters of silence, one request at a time. After a timeout or a bad frame the
// line is resynchronised by cancelling and flushing input; the port stays open. After an error of
// the port itself (an unplugged adapter) it is closed, and the bus opens it again.

#include "deadline.hpp"
#include "transport.hpp"

#include <boost/asio/serial_port.hpp>

#include <chrono>

namespace firegate::modbus {

/// Serial line settings, as the [[buses]] table gives them.
struct serial_line {
  std::string device;  ///< /dev/ttyUSB0, /dev/ttyS1, ...
  std::uint32_t baud{9600};
  char parity{'N'};  ///< 'N', 'E' or 'O'
  std::uint8_t data_bits{8};
  std::uint8_t stop_bits{1};
  /// Take the line for this master alone (an advisory flock on the device, held while it is open):
  /// a second master (firegatectl --direct while firegated polls) is refused, not let in to
  /// corrupt the first one's frames. Off for firegatectl --direct --force.
  bool exclusive{true};
};

class rtu_transport final : public transport {
 public:
  rtu_transport(boost::asio::any_io_executor ex, serial_line line, std::chrono::milliseconds timeout);
  std::string endpoint() const override { return line_.device; }
  bool is_open() const override { return port_.is_open(); }
  boost::asio::awaitable<std::error_code> open() override;
  boost::asio::awaitable<result<std::vector<std::uint8_t>>> transact(
      std::uint8_t unit, std::span<const std::uint8_t> pdu) override;
  boost::asio::awaitable<std::error_code> broadcast(std::span<const std::uint8_t> pdu,
                                                    std::chrono::milliseconds turnaround) override;
  void close() override;

 private:
  /// Drops whatever is waiting in the input buffer: a late answer to a timed-out request.
  void flush_input();
  std::error_code fail(std::error_code ec);

  serial_line line_;
  std::chrono::milliseconds timeout_;
  std::chrono::microseconds silence_;
  boost::asio::serial_port port_;
  boost::asio::steady_timer gap_;
  deadline deadline_;
  std::chrono::steady_clock::time_point line_quiet_since_{};
  std::vector<std::uint8_t> frame_;
};

}  // namespace firegate::modbus
