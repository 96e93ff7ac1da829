// The transport's deadline (drivers/modbus/deadline.hpp), a lazy watchdog: one timer wait runs
// while operations come and go, so each case checks what expires, and when, on a real io_context
// and the steady clock. Each io_context runs until no wait is left: an absence is proven by the
// loop running dry, not by a sleep.

#include "modbus/deadline.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <optional>

using namespace std::chrono_literals;
using firegate::modbus::deadline;
using steady = std::chrono::steady_clock;

TEST_CASE("deadline: an operation that outlives its timeout expires, at its own deadline") {
  boost::asio::io_context io;
  std::optional<steady::time_point> expired_at;
  deadline d(io.get_executor(), [&] { expired_at = steady::now(); });
  const auto start = steady::now();
  d.arm(60ms);
  io.run();  // until no wait is left
  REQUIRE(expired_at);
  CHECK(d.expired());
  CHECK(*expired_at - start >= 60ms);
}

TEST_CASE("deadline: operations disarmed in time never expire, while the watch timer runs under them") {
  boost::asio::io_context io;
  int expiries = 0;
  deadline d(io.get_executor(), [&] { ++expiries; });
  // Each operation lasts 20 ms of a 60 ms timeout and the next starts at once: the watch begun for
  // the first fires at 60 ms while the fourth is armed, which must wait on to its own deadline.
  int operations = 0;
  boost::asio::steady_timer pause(io);
  std::function<void()> next = [&] {
    if (operations > 0) d.disarm();
    if (++operations > 8) return;
    d.arm(60ms);
    pause.expires_after(20ms);
    pause.async_wait([&](boost::system::error_code) { next(); });
  };
  next();
  io.run();  // until no wait is left
  CHECK(operations == 9);
  CHECK(expiries == 0);
  CHECK_FALSE(d.expired());
}

TEST_CASE("deadline: a later operation left hanging expires at its deadline, not the first one's") {
  boost::asio::io_context io;
  std::optional<steady::time_point> expired_at;
  deadline d(io.get_executor(), [&] { expired_at = steady::now(); });
  d.arm(60ms);
  boost::asio::steady_timer later(io);
  steady::time_point second{};
  later.expires_after(40ms);
  later.async_wait([&](boost::system::error_code) {
    d.disarm();
    second = steady::now();
    d.arm(60ms);  // never disarmed
  });
  io.run();  // until no wait is left
  REQUIRE(expired_at);
  CHECK(*expired_at - second >= 60ms);
}

TEST_CASE("deadline: a shorter timeout than the pending watch's expires on time") {
  // A transport's connect and its requests can have different timeouts on one deadline.
  boost::asio::io_context io;
  std::optional<steady::time_point> expired_at;
  deadline d(io.get_executor(), [&] { expired_at = steady::now(); });
  d.arm(2s);
  d.disarm();
  const auto start = steady::now();
  d.arm(50ms);  // never disarmed: expires at 50 ms, not when the 2 s watch would fire
  io.run();     // until no wait is left
  REQUIRE(expired_at);
  CHECK(*expired_at - start >= 50ms);
  CHECK(*expired_at - start < 1500ms);
}

TEST_CASE("deadline: destroyed with a watch pending, nothing runs") {
  boost::asio::io_context io;
  int expiries = 0;
  {
    deadline d(io.get_executor(), [&] { ++expiries; });
    d.arm(10ms);
  }
  io.run();  // until no wait is left
  CHECK(expiries == 0);
}
