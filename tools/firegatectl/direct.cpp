#include "direct.hpp"

#include "client.hpp"
#include "modbus/rtu_transport.hpp"
#include "modbus/tcp_transport.hpp"
#include "modbus/technician.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace firegatectl {
namespace asio = boost::asio;
using namespace firegate;
using namespace firegate::modbus;

namespace {

std::unique_ptr<transport> open_line(asio::io_context& io, const direct_line& line) {
  if (line.target.starts_with("/")) {
    serial_line s;
    s.device = line.target;
    s.baud = line.baud;
    if (line.parity != "N" && line.parity != "E" && line.parity != "O") {
      throw failure(usage, fmt::format("--parity takes N, E or O, not {}", line.parity));
    }
    s.parity = line.parity[0];
    s.data_bits = static_cast<std::uint8_t>(line.data_bits);
    s.stop_bits = static_cast<std::uint8_t>(line.stop_bits);
    s.exclusive = !line.force;
    return std::make_unique<rtu_transport>(io.get_executor(), s, line.timeout);
  }
  const auto colon = line.target.rfind(':');
  int port = 502;
  std::string host = line.target;
  if (colon != std::string::npos) {
    host = line.target.substr(0, colon);
    try {
      port = std::stoi(line.target.substr(colon + 1));
    } catch (const std::exception&) {
      port = 0;
    }
  }
  if (host.empty() || port < 1 || port > 65535) {
    throw failure(usage, fmt::format("--direct takes HOST:PORT (Modbus TCP) or a serial device such as "
                                     "/dev/ttyUSB0, not \"{}\"",
                                     line.target));
  }
  return std::make_unique<tcp_transport>(io.get_executor(), host, static_cast<std::uint16_t>(port),
                                         line.timeout);
}

/// Sends each PDU over `t`, opening it first when needed.
pdu_sender sender_over(asio::io_context& io, transport& t) {
  return [&io, &t](std::uint8_t unit, std::vector<std::uint8_t> pdu, pdu_handler done) {
    asio::co_spawn(
        io,
        [&t, unit, pdu = std::move(pdu), done = std::move(done)]() -> asio::awaitable<void> {
          if (!t.is_open()) {
            if (auto ec = co_await t.open()) {
              done(ec, {});
              co_return;
            }
          }
          const auto sent = std::chrono::steady_clock::now();
          auto answer = co_await t.transact(unit, pdu);
          done(std::move(answer), std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - sent));
        },
        asio::detached);
  };
}

}  // namespace

bool serial_line_held(const std::string& device) {
  const int fd = ::open(device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // lets go of the lock, if it was taken
  return held;
}

register_reply direct_transact(const direct_line& line, const register_request& request) {
  asio::io_context io;
  auto t = open_line(io, line);
  register_reply out;
  transact_registers(sender_over(io, *t), request, [&](register_reply r) {
    out = std::move(r);
    t->close();
  });
  io.run();
  return out;
}

void direct_scan(const direct_line& line, int first, int last, std::shared_ptr<const profile_library> library,
                 const std::function<void(const unit_identity&)>& progress) {
  asio::io_context io;
  auto t = open_line(io, line);
  const auto send = sender_over(io, *t);
  std::function<void(int)> next = [&](int unit) {
    identify_unit(send, library, static_cast<std::uint8_t>(unit), [&, unit](unit_identity u) {
      progress(u);
      if (unit < last) {
        next(unit + 1);
      } else {
        t->close();
      }
    });
  };
  next(first);
  io.run();
}

std::shared_ptr<const profile_library> shipped_profiles(const std::string& dir, std::string& errors) {
  config::config_errors found;
  auto library =
      std::make_shared<const profile_library>(load_profiles(std::filesystem::path(dir) / "modbus", found));
  if (!found.empty()) errors = found.format(dir);
  return library;
}

}  // namespace firegatectl
