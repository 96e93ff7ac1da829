#include "rtu_transport.hpp"

#include "codec/rtu.hpp"
#include "modbus_error.hpp"
#include "rtu_read.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

namespace firegate::modbus {
namespace asio = boost::asio;

rtu_transport::rtu_transport(asio::any_io_executor ex, serial_line line, std::chrono::milliseconds timeout)
    : line_(std::move(line)),
      timeout_(timeout),
      silence_(rtu_frame_silence(line_.baud)),
      port_(ex),
      gap_(ex),
      deadline_(ex, [this] {
        boost::system::error_code ignored;
        port_.cancel(ignored);
      }) {}

void rtu_transport::close() {
  boost::system::error_code ignored;
  port_.close(ignored);
  gap_.cancel();
}

void rtu_transport::flush_input() {
  if (port_.is_open()) ::tcflush(port_.native_handle(), TCIFLUSH);
}

asio::awaitable<std::error_code> rtu_transport::open() {
  using base = asio::serial_port_base;
  boost::system::error_code ec;
  // Opened by hand, not by serial_port::open: the line's lock is taken before anything is set, since
  // a tty's settings are shared by every handle on it (a refused second master must not switch the
  // polling master's line to other settings). Close-on-exec, so no child inherits the lock.
  const int fd = ::open(line_.device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) co_return std::error_code(errno, std::system_category());
  if (line_.exclusive && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    co_return err == EWOULDBLOCK ? make_error_code(modbus_errc::line_held)
                                 : std::error_code(err, std::system_category());
  }
  // Raw mode, as serial_port::open sets it, then this line's own settings below.
  termios raw{};
  if (::tcgetattr(fd, &raw) != 0) {
    const int err = errno;
    ::close(fd);
    co_return std::error_code(err, std::system_category());
  }
  ::cfmakeraw(&raw);
  raw.c_iflag |= IGNPAR;
  raw.c_cflag |= CREAD | CLOCAL;
  if (::tcsetattr(fd, TCSANOW, &raw) != 0) {
    const int err = errno;
    ::close(fd);
    co_return std::error_code(err, std::system_category());
  }
  port_.assign(fd, ec);
  if (ec) {
    ::close(fd);
    co_return ec;
  }
  const auto parity = line_.parity == 'E'   ? base::parity::even
                      : line_.parity == 'O' ? base::parity::odd
                                            : base::parity::none;
  port_.set_option(base::baud_rate(line_.baud), ec);
  if (!ec) port_.set_option(base::parity(parity), ec);
  if (!ec) port_.set_option(base::character_size(line_.data_bits), ec);
  if (!ec)
    port_.set_option(base::stop_bits(line_.stop_bits == 2 ? base::stop_bits::two : base::stop_bits::one), ec);
  if (!ec) port_.set_option(base::flow_control(base::flow_control::none), ec);
  if (ec) {
    close();
    co_return ec;
  }
  flush_input();
  line_quiet_since_ = std::chrono::steady_clock::now();
  co_return std::error_code{};
}

std::error_code rtu_transport::fail(std::error_code ec) {
  deadline_.disarm();
  // The line itself failed (a USB adapter unplugged: its tty hung up, every read and write EIO from
  // now on, and the adapter plugged back in is a new tty behind the same name): closed, so the bus
  // opens the device again, by its name, until it is back.
  if (ec.category() != modbus_category()) {
    close();
    return ec;
  }
  // A timeout or a bad frame: resynchronise, whatever else arrives belongs to this failed exchange.
  flush_input();
  line_quiet_since_ = std::chrono::steady_clock::now();
  return ec;
}

asio::awaitable<std::error_code> rtu_transport::broadcast(std::span<const std::uint8_t> pdu,
                                                          std::chrono::milliseconds turnaround) {
  boost::system::error_code ec;
  gap_.expires_at(line_quiet_since_ + silence_);
  co_await gap_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!port_.is_open()) co_return make_error_code(modbus_errc::connection_closed);
  const auto adu = encode_rtu_adu(0, pdu);
  deadline_.arm(timeout_);
  co_await asio::async_write(port_, asio::buffer(adu), asio::redirect_error(asio::use_awaitable, ec));
  deadline_.disarm();
  if (ec) co_return fail(deadline_.expired() ? make_error_code(modbus_errc::timeout) : std::error_code(ec));
  // The units act on it now; the line stays quiet for the turnaround delay.
  gap_.expires_after(turnaround);
  co_await gap_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  flush_input();  // a unit that answered a broadcast anyway is wrong, and ignored
  line_quiet_since_ = std::chrono::steady_clock::now();
  co_return port_.is_open() ? std::error_code{} : make_error_code(modbus_errc::connection_closed);
}

asio::awaitable<result<std::vector<std::uint8_t>>> rtu_transport::transact(
    std::uint8_t unit, std::span<const std::uint8_t> pdu) {
  boost::system::error_code ec;
  // §2.5.1.1: frames are separated by at least 3.5 characters of silence.
  gap_.expires_at(line_quiet_since_ + silence_);
  co_await gap_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!port_.is_open()) co_return make_error_code(modbus_errc::connection_closed);
  flush_input();
  const auto adu = encode_rtu_adu(unit, pdu);
  deadline_.arm(timeout_);
  co_await asio::async_write(port_, asio::buffer(adu), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return fail(deadline_.expired() ? make_error_code(modbus_errc::timeout) : std::error_code(ec));
  auto response = co_await read_rtu_response(port_, unit, frame_);
  if (!response)
    co_return fail(deadline_.expired() ? make_error_code(modbus_errc::timeout) : response.error());
  deadline_.disarm();
  line_quiet_since_ = std::chrono::steady_clock::now();
  co_return response;
}

}  // namespace firegate::modbus
