// The MQTT ingest bus against a real mosquitto: the messages waiting in its inbox when it is
// stopped (a reload, a shutdown) are taken first, not lost. Paho has acknowledged each to the
// broker already (QoS 1), so the broker would not send them again.

#include "driver_harness.hpp"
#include "mqtt/mqtt_driver.hpp"
#include "support.hpp"

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <thread>

using namespace firegate;
using namespace std::chrono_literals;

TEST_CASE("an MQTT ingest bus stopped with messages waiting in its inbox takes them all first") {
  test::temp_dir dir;
  test::broker mosquitto(dir);
  auto s = std::make_shared<mqtt_ingest::ingest_bus_settings>();
  auto library = std::make_shared<mqtt_ingest::profile_library>(test::shipped_ingest_profiles());
  s->library = library;
  s->host = "127.0.0.1";
  s->port = mosquitto.port();
  s->client_id = "stop-test";
  s->persistent_session = false;
  s->max_rate = 100000;  // none of the burst is a flood
  s->burst = 100000;
  for (int i = 1; i <= 10; ++i) {
    mqtt_ingest::ingest_device_settings d;
    d.name = fmt::format("zb-{}", i);
    d.id = fmt::format("room{}", i);
    d.profile = &library->at("ZB-SMOKE");
    s->devices.push_back(std::move(d));
  }
  boost::asio::io_context io;
  test::recording_sink sink;
  auto bus = mqtt_ingest::make_ingest_bus(io.get_executor(), "wireless", s, sink);
  bus->start();
  const std::string payload = R"({"smoke": false, "battery": 90, "linkquality": 120})";
  test::mqtt_probe sensors(mosquitto.port(), "unused/#");
  // Subscribed once one gets through (one published before the subscription is not the bus's).
  REQUIRE(test::run_until(
      io,
      [&] {
        sensors.publish("zigbee2mqtt/room1", payload);
        return !sink.readings.empty();
      },
      10s));
  const auto messages = [&] {
    std::uint64_t n = 0;
    for (const auto& c : bus->counters()) n += c.messages;
    return n;
  };
  const auto waiting = [&] {
    for (const auto& [key, value] : bus->diagnostics())
      if (key == "waiting") return std::stoul(value);
    return 0ul;
  };
  // This thread runs the loop, which stands still meanwhile: Paho's thread fills the inbox.
  const auto before = messages();
  for (int i = 0; i < 500; ++i) sensors.publish(fmt::format("zigbee2mqtt/room{}", i % 10 + 1), payload);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (waiting() < 500 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);  // polled with a deadline: Paho's thread, not the loop, moves it
  REQUIRE(waiting() >= 500);
  bus->stop();
  CHECK(waiting() == 0);
  CHECK(messages() - before >= 500);
  io.run_for(20ms);
}
