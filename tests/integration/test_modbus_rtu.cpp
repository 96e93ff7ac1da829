// Proves Modbus RTU end to end on a virtual serial line (a socat pty pair): firegate's driver reads
// SD-1 registers from libmodbus's RTU server, a dead unit on the same line delays its live neighbour
// by no more than its own timeout, a corrupted CRC is reported as such and takes the device
// offline, and a line unplugged and plugged back in is opened again, its devices read at once (not
// one dead before) and its fault told in bounded time.

#include "driver_harness.hpp"
#include "libmodbus_server.hpp"
#include "modbus/codec/pdu.hpp"
#include "modbus/codec/rtu.hpp"
#include "modbus/modbus_driver.hpp"
#include "support.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <functional>
#include <map>
#include <thread>

using namespace firegate;
using namespace std::chrono_literals;
using test::recording_sink;
using test::run_until;

namespace {

/// A field bus on the far end of the pty pair: answers fc 04 reads for the units it has, stays silent
/// for the others (a dead device), and can corrupt its CRCs. libmodbus's RTU server (3.1.6) cannot
/// stand in here: after it ignores a frame for another unit it stops answering its own (seen with
/// mbpoll as the master too).
class rtu_responder {
 public:
  rtu_responder(const std::string& device, std::map<std::uint8_t, std::vector<std::uint16_t>> units,
                bool corrupt_crc)
      : units_(std::move(units)), corrupt_(corrupt_crc) {
    fd_ = ::open(device.c_str(), O_RDWR | O_NOCTTY);
    REQUIRE(fd_ >= 0);
    thread_ = std::thread([this] { serve(); });
  }
  /// Requests seen on the line for `unit`, answered or not.
  int requests_for(std::uint8_t unit) const { return requests_[unit]; }
  ~rtu_responder() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

 private:
  void serve() {
    std::vector<std::uint8_t> pending;
    std::uint8_t buf[256];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const auto n = ::read(fd_, buf, sizeof buf);
      if (n <= 0 && (n == 0 || errno == EIO)) return;  // the line hung up (unplugged)
      if (n < 0) continue;
      pending.insert(pending.end(), buf, buf + n);
      while (pending.size() >= 8) {  // fc 04 requests are 8 bytes
        std::vector<std::uint8_t> frame(pending.begin(), pending.begin() + 8);
        pending.erase(pending.begin(), pending.begin() + 8);
        auto decoded = modbus::decode_rtu_adu(frame);
        if (!decoded) continue;
        ++requests_[decoded->unit];
        auto unit = units_.find(decoded->unit);
        if (unit == units_.end()) continue;  // nobody at this address
        auto request = modbus::decode_request(decoded->pdu);
        if (!request) continue;
        const auto& read = std::get<modbus::read_request>(*request);
        std::vector<std::uint8_t> pdu;
        modbus::encode_read_response(read.function, std::span(unit->second).subspan(read.address, read.count),
                                     pdu);
        auto reply = modbus::encode_rtu_adu(decoded->unit, pdu);
        if (corrupt_) reply.back() ^= 0xFF;
        if (::write(fd_, reply.data(), reply.size()) < 0) return;
      }
    }
  }

  std::map<std::uint8_t, std::vector<std::uint16_t>> units_;
  std::array<std::atomic<int>, 256> requests_{};
  bool corrupt_;
  int fd_{-1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::shared_ptr<const modbus::device_profile> sd1() {
  return test::shipped_profile("SD-1");
}

/// A 9600-baud line of SD-1s at `units`, read every 100 ms, with `change` applied to its settings.
config::bus_config rtu_bus(const std::string& device, std::vector<std::uint8_t> units,
                           const std::function<void(modbus::modbus_rtu_settings&)>& change = {}) {
  auto s = std::make_shared<modbus::modbus_rtu_settings>();
  s->line = {device, 9600, 'N', 8, 1};
  s->timeout = 200ms;
  s->poll_interval = 100ms;
  s->offline_after = 2;
  if (change) change(*s);
  for (auto u : units) s->devices.push_back({"smoke-" + std::to_string(u), u, sd1(), 100ms, 100ms, {}, {}});
  return {"rs485-1", "modbus_rtu", s};
}

}  // namespace

TEST_CASE("RTU: SD-1 registers from libmodbus's RTU server over a pty pair") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  test::libmodbus_server server(line.b(), 1);
  server.set_input_register(0, 1);
  server.set_input_register(1, 37);
  server.set_input_register(2, 215);
  server.set_input_register(3, 2400);
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = rtu_bus(line.a(), {1});
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return sink.readings.size() >= 8; }, 10s));
  {
    // The driver holds the line: a second master (firegatectl --direct) cannot take it.
    const int other = ::open(line.a().c_str(), O_RDWR | O_NOCTTY);
    REQUIRE(other >= 0);
    CHECK(::flock(other, LOCK_EX | LOCK_NB) != 0);
    CHECK(errno == EWOULDBLOCK);
    ::close(other);
  }
  driver->stop();
  io.run_for(50ms);
  CHECK(sink.readings[0].point == "state");
  CHECK(sink.readings[0].value == 1);
  CHECK(sink.readings[1].value == Approx(0.37));
  CHECK(sink.readings[2].value == Approx(21.5));
  CHECK(sink.readings[3].value == Approx(24.0));
  CHECK(sink.statuses.empty());
}

TEST_CASE("RTU: a dead unit on the line delays its live neighbour by no more than its own timeout") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  rtu_responder field(line.b(), {{1, {0, 2, 215, 2400}}}, false);  // unit 2 has no device behind it
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = rtu_bus(line.a(), {1, 2});
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  const bool done = run_until(
      io, [&] { return sink.polls["smoke-1"].size() >= 8 && !sink.statuses.empty(); }, 20s);
  INFO("unit 1 reads: " << sink.polls["smoke-1"].size() << ", statuses: " << sink.statuses.size());
  std::string seen;
  for (const auto& s : sink.statuses)
    seen += s.device + (s.online ? " online; " : " offline: " + s.error.message() + "; ");
  INFO(seen);
  REQUIRE(done);
  driver->stop();
  io.run_for(50ms);
  CHECK(sink.statuses[0].device == "smoke-2");
  CHECK_FALSE(sink.statuses[0].online);
  CHECK(sink.statuses[0].error.message() == "no response before the timeout");
  // Each cycle: unit 1 answers, unit 2 costs its 200 ms timeout, then the 100 ms cycle pause
  // runs from the cycle's start. Allow scheduling slack, but not a second timeout.
  std::chrono::steady_clock::duration worst{};
  for (std::size_t i = 1; i < sink.polls["smoke-1"].size(); ++i) {
    worst = std::max(worst, sink.polls["smoke-1"][i] - sink.polls["smoke-1"][i - 1]);
  }
  INFO("worst gap between unit 1 reads: "
       << std::chrono::duration_cast<std::chrono::milliseconds>(worst).count() << " ms");
  CHECK(worst < 200ms + 100ms + 150ms);
}

TEST_CASE("RTU: a corrupted CRC is a CRC mismatch, and the device goes offline") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  rtu_responder field(line.b(), {{1, {0, 2, 215, 2400}}}, true);
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = rtu_bus(line.a(), {1});
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  const bool offline = run_until(
      io, [&] { return !sink.statuses.empty(); }, 10s);
  driver->stop();
  io.run_for(50ms);
  REQUIRE(offline);
  CHECK(sink.statuses[0].error.message().find("CRC mismatch") == 0);
  CHECK(sink.readings.empty());
}

TEST_CASE("RTU: an offline unit is retried with capped backoff, not every cycle") {
  test::temp_dir dir;
  test::pty_pair line(dir);
  rtu_responder field(line.b(), {{1, {0, 2, 215, 2400}}}, false);  // unit 2 is dead
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = rtu_bus(line.a(), {1, 2}, [](modbus::modbus_rtu_settings& s) {
    s.timeout = 100ms;
    s.offline_retry_max = 800ms;
  });
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return !sink.statuses.empty(); }, 10s));
  const auto dead_before = field.requests_for(2);
  const auto live_before = sink.polls["smoke-1"].size();
  io.run_for(3s);
  driver->stop();
  io.run_for(50ms);
  const auto dead_tries = field.requests_for(2) - dead_before;
  const auto live_reads = sink.polls["smoke-1"].size() - live_before;
  INFO("in 3 s after going offline: unit 2 tried " << dead_tries << " times, unit 1 read " << live_reads
                                                   << " times");
  // Retries after 0.5 s, 0.8 s, 0.8 s, ...: about 4 in 3 s; every cycle would be about 15.
  CHECK(dead_tries >= 2);
  CHECK(dead_tries <= 6);
  // Unit 1 is read every 100 ms cycle except where a retry costs 100 ms.
  CHECK(live_reads >= 18);
  CHECK(sink.statuses.size() == 1);  // still one offline event, no flapping
}

TEST_CASE("RTU: a serial adapter unplugged and plugged back in is opened again - its devices read at once") {
  // A technician knocks the USB adapter out and plugs it back: its tty hangs up for good (every read
  // and write EIO) and comes back as a new one behind the same name. The bus must let the dead one
  // go and open the name again, or the line stays offline until someone restarts the daemon; and
  // once it opens, its devices are read at once, not after the back-off their failed tries built up
  // (up to offline_retry_max, here a minute).
  test::temp_dir dir;
  test::pty_pair line(dir);
  const std::map<std::uint8_t, std::vector<std::uint16_t>> units{{1, {0, 2, 215, 2400}}};
  auto field = std::make_unique<rtu_responder>(line.b(), units, false);
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = rtu_bus(line.a(), {1}, [](modbus::modbus_rtu_settings& s) { s.offline_retry_max = 60s; });
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return !sink.readings.empty(); }, 10s));

  line.unplug();
  field.reset();
  REQUIRE(run_until(
      io, [&] { return !sink.statuses.empty(); }, 10s));
  CHECK_FALSE(sink.statuses.back().online);
  // Unplugged for 10 s: the name is gone, the bus keeps trying it (its tries 2 s apart by now, the
  // device's own retry 16 s).
  io.run_for(10s);
  CHECK(sink.statuses.size() == 1);

  line.plug();
  field = std::make_unique<rtu_responder>(line.b(), units, false);
  const auto plugged = std::chrono::steady_clock::now();
  const auto readings_before = sink.readings.size();
  const bool back = run_until(
      io, [&] { return sink.readings.size() > readings_before && sink.statuses.back().online; }, 30s);
  const auto took = std::chrono::steady_clock::now() - plugged;
  driver->stop();
  io.run_for(50ms);
  INFO("statuses: " << sink.statuses.size()
                    << ", requests seen by the new line's unit 1: " << field->requests_for(1)
                    << ", read again " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                    << " ms after the plug");
  REQUIRE(back);
  CHECK(sink.statuses.size() == 2);     // offline once, online once
  CHECK(sink.statuses.front().by_bus);  // the line's fault, one for its devices
  REQUIRE(sink.bus_statuses.size() >= 2);
  CHECK_FALSE(sink.bus_statuses[sink.bus_statuses.size() - 2].online);
  CHECK(sink.bus_statuses.back().online);
  CHECK(std::count_if(sink.bus_statuses.begin(), sink.bus_statuses.end(),
                      [](const bus_status& b) { return !b.online; }) == 1);
  // The bus's next try to open comes within 2 s of the plug; the device's own back-off would have
  // waited up to 16 s (the bound leaves a loaded machine room).
  CHECK(took < 10s);
}

TEST_CASE("RTU: a line that cannot be opened is told offline in bounded time - whatever offline_after is") {
  // Tries to open a missing line back off to 2 s apart, and may each take a connect's timeout on
  // TCP: counting offline_after = 20 of them takes half a minute at least. The line's fault must be told
  // within GB 50116's 100 s; here pending_limit() is its 10 s floor (one device, 200 ms timeout), so within
  // about 16 s.
  test::temp_dir dir;
  test::pty_pair line(dir);
  rtu_responder field(line.b(), {{1, {0, 2, 215, 2400}}}, false);
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = rtu_bus(line.a(), {1}, [](modbus::modbus_rtu_settings& s) { s.offline_after = 20; });
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return !sink.readings.empty(); }, 10s));
  line.unplug();
  const auto unplugged = std::chrono::steady_clock::now();
  const bool told = run_until(
      io, [&] { return !sink.statuses.empty(); }, 30s);
  const auto took = std::chrono::steady_clock::now() - unplugged;
  driver->stop();
  io.run_for(50ms);
  INFO("told offline " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms after the unplug");
  REQUIRE(told);
  CHECK_FALSE(sink.statuses.front().online);
  CHECK(sink.statuses.front().by_bus);
  REQUIRE_FALSE(sink.bus_statuses.empty());
  CHECK_FALSE(sink.bus_statuses.back().online);
  CHECK(sink.bus_statuses.back().failed.find("it cannot be opened") == 0);
  CHECK(took < 20s);
}

TEST_CASE(
    "RTU: a line plugged back in asks at once the devices that went down with it - not one dead before") {
  // Unit 2 was dead before the line went: it keeps its own back-off, or every reconnection would
  // cost the live detectors its timeout first.
  test::temp_dir dir;
  test::pty_pair line(dir);
  const std::map<std::uint8_t, std::vector<std::uint16_t>> units{{1, {0, 2, 215, 2400}}};  // unit 2 silent
  auto field = std::make_unique<rtu_responder>(line.b(), units, false);
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = rtu_bus(line.a(), {1, 2}, [](modbus::modbus_rtu_settings& s) { s.offline_retry_max = 60s; });
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  const auto told = [&](const std::string& device) {
    return std::any_of(sink.statuses.begin(), sink.statuses.end(),
                       [&](const device_status& s) { return s.device == device && !s.online; });
  };
  REQUIRE(run_until(
      io, [&] { return told("smoke-2"); }, 10s));
  CHECK_FALSE(sink.statuses.back().by_bus);  // its own fault

  line.unplug();
  field.reset();
  REQUIRE(run_until(
      io, [&] { return !sink.bus_statuses.empty() && !sink.bus_statuses.back().online; }, 10s));
  line.plug();
  field = std::make_unique<rtu_responder>(line.b(), units, false);
  // Unit 1 is read again, five times, and unit 2 has not been asked on the new line meanwhile.
  const auto polls_before = sink.polls["smoke-1"].size();
  REQUIRE(run_until(
      io, [&] { return sink.polls["smoke-1"].size() >= polls_before + 5; }, 15s));
  const auto dead_asked = field->requests_for(2);
  driver->stop();
  io.run_for(50ms);
  CHECK(dead_asked == 0);
}

TEST_CASE("RTU: a line plugged back in before the bus was told down raises no device fault - false or late") {
  // Unit 1 hits the hung-up port first, so it reaches offline_after a try to open before its
  // neighbours and waits to be told (pending): its failures are the line's. Plugged back in before
  // the others reach offline_after, the line's devices answer again, and none of them may be told
  // offline on its own because a neighbour happened to be asked first.
  test::temp_dir dir;
  test::pty_pair line(dir);
  const std::map<std::uint8_t, std::vector<std::uint16_t>> units{
      {1, {0, 2, 215, 2400}}, {2, {0, 2, 215, 2400}}, {3, {0, 2, 215, 2400}}};
  auto field = std::make_unique<rtu_responder>(line.b(), units, false);
  boost::asio::io_context io;
  recording_sink sink;
  // Six failures: the first unit's fail at the tries 0, 0.25, 0.75, 1.75 and 3.75 s after the port
  // error, the others' at 7.75 s; plugged back in between.
  auto bus = rtu_bus(line.a(), {1, 2, 3}, [](modbus::modbus_rtu_settings& s) { s.offline_after = 6; });
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return sink.polls["smoke-1"].size() >= 3 && sink.polls["smoke-3"].size() >= 3; }, 10s));
  line.unplug();
  field.reset();
  io.run_for(5500ms);  // the outage's length, in the middle of the window above
  line.plug();
  field = std::make_unique<rtu_responder>(line.b(), units, false);
  std::map<std::string, std::size_t> before;
  for (const auto& [device, polls] : sink.polls) before[device] = polls.size();
  const bool back = run_until(
      io,
      [&] {
        return std::all_of(before.begin(), before.end(),
                           [&](const auto& b) { return sink.polls[b.first].size() >= b.second + 3; });
      },
      15s);
  driver->stop();
  io.run_for(50ms);
  INFO("device statuses: " << sink.statuses.size() << ", bus statuses: " << sink.bus_statuses.size());
  REQUIRE(back);
  CHECK(sink.statuses.empty());
  CHECK(std::none_of(sink.bus_statuses.begin(), sink.bus_statuses.end(),
                     [](const bus_status& b) { return !b.online; }));
}
