// What a Modbus bus tells its sink when its devices and its line fail in a given order: the bus's
// own state (online, offline, pending, told with its bus, bus back) over a transport whose every
// answer and open the test decides. A real server or line cannot put a failure between two
// particular requests; these sequences are the ones that reached the platform wrongly before (a
// device told offline on its own for its line's fault, or set online without the platform hearing).

#include "driver.hpp"
#include "driver_harness.hpp"
#include "modbus/modbus_bus.hpp"
#include "modbus/modbus_error.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace firegate;
using namespace firegate::modbus;
using namespace std::chrono_literals;
using test::recording_sink;
using test::run_until;

namespace bus_states_test {

/// What a unit does with the next request.
enum class reply { answer, silent, drop };

/// The line as the test scripts it: each request's outcome by unit, each open's.
struct script {
  std::function<reply(std::uint8_t unit)> on_request = [](std::uint8_t) { return reply::answer; };
  bool open_fails{false};
  std::map<std::uint8_t, int> asked;
  int opens{0};
  int failed_opens{0};
};

/// A transport whose answers the script decides, at once: a silent unit costs no timeout, so a
/// sequence of failures takes milliseconds. An answer reads zeros (an SD-1 in its normal state).
class scripted_transport final : public transport {
 public:
  explicit scripted_transport(std::shared_ptr<script> s) : script_(std::move(s)) {}
  std::string endpoint() const override { return "scripted"; }
  bool is_open() const override { return open_; }
  boost::asio::awaitable<std::error_code> open() override {
    ++script_->opens;
    if (script_->open_fails) {
      ++script_->failed_opens;
      co_return std::make_error_code(std::errc::connection_refused);
    }
    open_ = true;
    co_return std::error_code{};
  }
  boost::asio::awaitable<result<std::vector<std::uint8_t>>> transact(
      std::uint8_t unit, std::span<const std::uint8_t> pdu) override {
    if (!open_) co_return std::make_error_code(std::errc::not_connected);
    ++script_->asked[unit];
    switch (script_->on_request(unit)) {
      case reply::silent:
        co_return make_error_code(modbus_errc::timeout);
      case reply::drop:
        open_ = false;
        co_return std::make_error_code(std::errc::connection_reset);
      case reply::answer:
        break;
    }
    const std::uint8_t function = pdu[0];
    const unsigned count = (unsigned{pdu[3]} << 8) | pdu[4];
    const unsigned bytes = function <= 2 ? (count + 7) / 8 : count * 2;
    std::vector<std::uint8_t> out{function, static_cast<std::uint8_t>(bytes)};
    out.resize(2 + bytes, 0);
    co_return out;
  }
  void close() override { open_ = false; }

 private:
  std::shared_ptr<script> script_;
  bool open_{false};
};

/// A bus of SD-1s at `units`, read every 50 ms, offline after `offline_after` failures, offline ones
/// retried within 0.5 s.
struct scripted_bus {
  boost::asio::io_context io;
  recording_sink sink;
  std::shared_ptr<script> line = std::make_shared<script>();
  std::unique_ptr<bus_driver> driver;

  scripted_bus(std::vector<std::uint8_t> units, std::uint32_t offline_after) {
    auto s = std::make_shared<modbus_bus_settings>();
    s->timeout = 100ms;
    s->poll_interval = 50ms;
    s->alarm_interval = 50ms;
    s->offline_after = offline_after;
    s->offline_retry_max = 500ms;
    const auto profile = test::shipped_profile("SD-1");
    for (auto u : units) s->devices.push_back({name(u), u, profile, 50ms, 50ms, {}, {}});
    driver = make_modbus_bus(io.get_executor(), "bus-1", s, std::make_unique<scripted_transport>(line), sink);
    driver->start();
  }
  ~scripted_bus() {
    driver->stop();
    io.run_for(20ms);
  }
  static std::string name(std::uint8_t unit) { return "smoke-" + std::to_string(unit); }
  bool run_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
    return test::run_until(io, condition, timeout);
  }
  /// What the sink was told of `device`, in order: "offline (bus)", "offline (own)", "online".
  std::vector<std::string> told(const std::string& device) const {
    std::vector<std::string> out;
    for (const auto& s : sink.statuses) {
      if (s.device != device) continue;
      out.push_back(s.online ? "online" : s.by_bus ? "offline (bus)" : "offline (own)");
    }
    return out;
  }
  std::size_t bus_told(bool online) const {
    return static_cast<std::size_t>(std::count_if(sink.bus_statuses.begin(), sink.bus_statuses.end(),
                                                  [&](const bus_status& b) { return b.online == online; }));
  }
  std::size_t polls(std::uint8_t unit) { return sink.polls[name(unit)].size(); }
};

}  // namespace bus_states_test

using namespace bus_states_test;

TEST_CASE(
    "modbus bus states: every unit silent at once is one bus fault - back, a unit still silent is told "
    "offline on its own once a neighbour answers") {
  scripted_bus b({1, 2, 3}, 2);
  REQUIRE(b.run_until([&] { return b.polls(1) >= 2 && b.polls(2) >= 2 && b.polls(3) >= 2; }));

  b.line->on_request = [](std::uint8_t) { return reply::silent; };
  REQUIRE(b.run_until([&] { return b.bus_told(false) == 1; }));
  CHECK(b.bus_told(true) == 1);  // its first answer since the start
  for (const auto* d : {"smoke-1", "smoke-2", "smoke-3"})
    CHECK(b.told(d) == std::vector<std::string>{"offline (bus)"});

  // Units 1 and 2 answer again, unit 3 stays silent: the bus is back, 1 and 2 are told online, and
  // unit 3, asked at once with the others, is then its own fault: told so, once.
  b.line->on_request = [](std::uint8_t unit) { return unit == 3 ? reply::silent : reply::answer; };
  REQUIRE(b.run_until([&] { return b.told("smoke-3").size() >= 2; }));
  const auto asked_3 = b.line->asked[3];
  REQUIRE(b.run_until([&] { return b.line->asked[3] >= asked_3 + 3 && b.polls(1) >= 10; }));
  CHECK(b.bus_told(false) == 1);
  CHECK(b.bus_told(true) == 2);
  CHECK(b.told("smoke-1") == std::vector<std::string>{"offline (bus)", "online"});
  CHECK(b.told("smoke-2") == std::vector<std::string>{"offline (bus)", "online"});
  CHECK(b.told("smoke-3") == std::vector<std::string>{"offline (bus)", "offline (own)"});

  // It answers: online.
  b.line->on_request = [](std::uint8_t) { return reply::answer; };
  REQUIRE(b.run_until([&] { return b.told("smoke-3").size() >= 3; }));
  CHECK(b.told("smoke-3").back() == "online");
}

TEST_CASE(
    "modbus bus states: a unit waiting again after its bus came back, when the line drops and opens "
    "again - told online when it answers, never offline on its own") {
  scripted_bus b({1, 2, 3}, 3);
  REQUIRE(b.run_until([&] { return b.polls(1) >= 2 && b.polls(2) >= 2 && b.polls(3) >= 2; }));
  b.line->on_request = [](std::uint8_t) { return reply::silent; };
  REQUIRE(b.run_until([&] { return b.bus_told(false) == 1; }));
  const auto back = b.bus_told(true) + 1;

  // Unit 1 answers and brings the bus back; unit 2, asked at once, is silent (waiting again: it may
  // be its own fault); the next request, whichever unit's, loses the connection, and the line
  // cannot be opened once. No unit answered between unit 2's silence and the drop, so its silence
  // was never shown to be its own.
  bool unit_2_silent = false;
  bool dropped = false;
  b.line->on_request = [&](std::uint8_t unit) {
    if (unit_2_silent && !dropped) {
      dropped = true;
      b.line->open_fails = true;
      return reply::drop;
    }
    if (unit == 2 && b.bus_told(true) == back) {
      unit_2_silent = true;
      return reply::silent;
    }
    return unit == 1 ? reply::answer : reply::silent;
  };
  REQUIRE(b.run_until([&] { return dropped; }));
  REQUIRE(b.run_until([&] { return b.line->failed_opens >= 1; }));
  // Everything answers from the next open on.
  b.line->open_fails = false;
  b.line->on_request = [](std::uint8_t) { return reply::answer; };
  REQUIRE(b.run_until([&] {
    return b.told("smoke-2").size() >= 2 && b.told("smoke-3").size() >= 2 && b.polls(2) >= 5 &&
           b.polls(3) >= 5;
  }));
  INFO("unit 2: " << fmt::format("{}", fmt::join(b.told("smoke-2"), ", ")));
  CHECK(b.told("smoke-1") == std::vector<std::string>{"offline (bus)", "online"});
  CHECK(b.told("smoke-2") == std::vector<std::string>{"offline (bus)", "online"});
  CHECK(b.told("smoke-3") == std::vector<std::string>{"offline (bus)", "online"});
  CHECK(b.bus_told(false) == 1);
}

TEST_CASE("modbus bus states: one unit silent among answering neighbours is its own fault - no bus fault") {
  scripted_bus b({1, 2, 3}, 2);
  REQUIRE(b.run_until([&] { return b.polls(1) >= 2 && b.polls(2) >= 2 && b.polls(3) >= 2; }));
  b.line->on_request = [](std::uint8_t unit) { return unit == 2 ? reply::silent : reply::answer; };
  REQUIRE(b.run_until([&] { return !b.told("smoke-2").empty(); }));
  const auto polls_1 = b.polls(1);
  REQUIRE(b.run_until([&] { return b.polls(1) >= polls_1 + 10; }));
  CHECK(b.told("smoke-2") == std::vector<std::string>{"offline (own)"});
  CHECK(b.told("smoke-1").empty());
  CHECK(b.told("smoke-3").empty());
  CHECK(b.bus_told(false) == 0);
}
