// Proves the Modbus TCP driver against libmodbus's server, an independent implementation: it reads
// the SD-1 registers with the right scaling, keeps polling after exception answers, reports a device
// that stops answering as offline after the configured failures, and online again when it answers.

#include "modbus/modbus_tcp_driver.hpp"
#include "modbus/profile.hpp"
#include "support.hpp"

#include <modbus/modbus.h>
#include <sys/socket.h>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

using namespace firegate;
using namespace std::chrono_literals;

namespace {

/// libmodbus serving one mapping on loopback, in its own thread.
class libmodbus_server {
 public:
  libmodbus_server() : port_(test::free_port()) {
    ctx_ = modbus_new_tcp("127.0.0.1", port_);
    map_ = modbus_mapping_new(0, 0, 32, 32);
    listen_fd_ = modbus_tcp_listen(ctx_, 1);
    REQUIRE(listen_fd_ >= 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~libmodbus_server() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (const int s = client_fd_.load(); s >= 0) ::shutdown(s, SHUT_RDWR);
    thread_.join();
    modbus_mapping_free(map_);
    modbus_close(ctx_);
    modbus_free(ctx_);
  }
  std::uint16_t port() const { return port_; }
  void set_input(int address, std::uint16_t value) {
    std::lock_guard lock(mutex_);
    map_->tab_input_registers[address] = value;
  }
  /// Makes the server drop requests without answering.
  void set_silent(bool silent) { silent_ = silent; }
  /// Answers with exception 4 (server device failure).
  void set_failing(bool failing) { failing_ = failing; }

 private:
  void serve() {
    while (!stopping_) {
      const int s = modbus_tcp_accept(ctx_, &listen_fd_);
      if (s < 0) return;
      client_fd_ = s;
      std::uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
      for (;;) {
        const int rc = modbus_receive(ctx_, query);
        if (rc == 0) continue;
        if (rc < 0) break;
        if (silent_) continue;
        std::lock_guard lock(mutex_);
        if (failing_) {
          modbus_reply_exception(ctx_, query, MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE);
        } else {
          modbus_reply(ctx_, query, rc, map_);
        }
      }
      client_fd_ = -1;
      ::close(s);
    }
  }

  std::uint16_t port_;
  modbus_t* ctx_{nullptr};
  modbus_mapping_t* map_{nullptr};
  int listen_fd_{-1};
  std::atomic<int> client_fd_{-1};
  std::atomic<bool> stopping_{false}, silent_{false}, failing_{false};
  std::mutex mutex_;
  std::thread thread_;
};

struct recording_sink final : reading_sink {
  std::vector<reading> readings;
  std::vector<device_status> statuses;
  void on_readings(std::span<const reading> r) override {
    readings.insert(readings.end(), r.begin(), r.end());
  }
  void on_device_status(const device_status& s) override { statuses.push_back(s); }
  std::optional<double> last(const std::string& point) const {
    for (auto it = readings.rbegin(); it != readings.rend(); ++it) {
      if (it->point == point) return it->value;
    }
    return std::nullopt;
  }
};

/// Runs `io` until `condition` holds or `timeout` passes.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& condition,
               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_for(10ms);
  }
  return true;
}

config::bus_config make_bus(std::uint16_t port) {
  auto s = std::make_shared<modbus::modbus_tcp_settings>();
  s->host = "127.0.0.1";
  s->port = port;
  s->timeout = 200ms;
  s->poll_interval = 50ms;
  s->offline_after = 2;
  s->devices.push_back({"smoke-1", 1, modbus::find_builtin_profile("SD-1")});
  return {"bus-1", "modbus_tcp", s};
}

}  // namespace

TEST_CASE("SD-1 registers read from libmodbus with scaling applied") {
  libmodbus_server server;
  server.set_input(0, 1);       // state: fire
  server.set_input(1, 37);      // 0.37 dB/m
  server.set_input(2, 0xFF9C);  // -10.0 °C (int16)
  server.set_input(3, 2398);    // 23.98 V
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = make_bus(server.port());
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return sink.readings.size() >= 4; }, 5s));
  CHECK(sink.last("state") == 1.0);
  CHECK(sink.last("smoke") == Approx(0.37));
  CHECK(sink.last("temperature") == Approx(-10.0));
  CHECK(sink.last("supply_voltage") == Approx(23.98));
  CHECK(sink.readings[0].device == "smoke-1");
  CHECK(sink.readings[1].unit == "dB/m");

  server.set_input(0, 0);
  REQUIRE(run_until(
      io, [&] { return sink.last("state") == 0.0; }, 5s));
  driver->stop();
  io.run_for(50ms);
}

TEST_CASE("a silent device goes offline after N failures and online when it answers") {
  libmodbus_server server;
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = make_bus(server.port());
  auto driver = create_driver(io.get_executor(), bus, sink);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return !sink.readings.empty(); }, 5s));
  server.set_silent(true);
  REQUIRE(run_until(
      io, [&] { return !sink.statuses.empty(); }, 5s));
  CHECK_FALSE(sink.statuses[0].online);
  CHECK(sink.statuses[0].error.message() == "no response before the timeout");
  CHECK(sink.statuses[0].detail.find("unit 1") != std::string::npos);
  server.set_silent(false);
  REQUIRE(run_until(
      io, [&] { return sink.statuses.size() >= 2; }, 5s));
  CHECK(sink.statuses[1].online);
  driver->stop();
  io.run_for(50ms);
}

TEST_CASE("exception answers count as failures but keep the connection and the schedule") {
  libmodbus_server server;
  boost::asio::io_context io;
  recording_sink sink;
  auto bus = make_bus(server.port());
  auto driver = create_driver(io.get_executor(), bus, sink);
  server.set_failing(true);
  driver->start();
  REQUIRE(run_until(
      io, [&] { return !sink.statuses.empty(); }, 5s));
  CHECK(sink.statuses[0].error.message().find("exception 4") == 0);
  server.set_failing(false);
  REQUIRE(run_until(
      io, [&] { return !sink.readings.empty(); }, 5s));
  driver->stop();
  io.run_for(50ms);
}
