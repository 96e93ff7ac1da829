// The metrics (docs/metrics.md) end to end: a real firegated polling two SD-1s on firegate-sim, a
// real mosquitto, a fire; the [metrics] endpoint scraped over HTTP by Python's http.client (not our
// own client) and checked by Prometheus's own `promtool check metrics` (format and naming rules), and the
// figures read off it against what happened: the fire counted and open, its path's latency observed
// at every stage, the devices' polls, the uplink connected, a reload counted. `firegatectl metrics`
// gives the same families. HEAD, keep-alive, the endpoint's refusals (404, 405, 503 past eight
// connections) and a port already taken (logged, the gateway runs on, a reload opens it) too.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

namespace {

/// What a command printed and how it ended.
struct run_result {
  int exit{-1};
  std::string out;
};

run_result run(const std::string& command) {
  run_result r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// Requests by tests/interop/http_probe.py (Python's http.client): a line a response, "STATUS
/// CONTENT-LENGTH BODY-BYTES CONTENT-TYPE", then the last body with --body.
run_result http(std::uint16_t port, const std::string& path, const std::string& options = "--body") {
  return run(fmt::format("/usr/bin/python3 {}/tests/interop/http_probe.py {} '{}' {}", source_dir(), port,
                         path, options));
}

/// What follows the status lines: the body.
std::string body_of(const std::string& out, int lines = 1) {
  std::size_t at = 0;
  for (int i = 0; i < lines; ++i) {
    const auto end = out.find('\n', at);
    if (end == std::string::npos) return {};
    at = end + 1;
  }
  return out.substr(at);
}

/// The value of the sample whose name and labels are exactly `series` (`name{a="x",b="y"}` as
/// written), or nullopt.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

/// The families the text declares (# TYPE lines).
std::set<std::string> families(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# TYPE ")) out.insert(line.substr(7, line.find(' ', 7) - 7));
  }
  return out;
}

/// promtool's verdict on an exposition: its exit status and what it said.
run_result promtool(const temp_dir& dir, const std::string& text, const std::string& name) {
  const auto file = dir / name;
  std::ofstream(file) << text;
  return run("promtool check metrics < " + file.string());
}

}  // namespace

TEST_CASE(
    "metrics: the endpoint scraped over HTTP passes promtool - a fire counted, open, and timed at "
    "every stage of its path - firegatectl metrics gives the same families - a reload counted") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 2);
  const auto port = free_port();
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2);
  text += fmt::format("\n[metrics]\nenabled = true\nlisten = \"127.0.0.1:{}\"\n", port);
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));
  REQUIRE(wait_until(
      [&] { return daemon.log_text().find("metrics endpoint listening") != std::string::npos; }, 5s));

  // A fire, raised and delivered to the platform (PUBACK).
  sim.send("1 state 1");
  REQUIRE(wait_event_where(platform, "fire_alarm", [](const json&) { return true; }));

  std::string body;
  run_result last;
  const bool scraped = wait_until(
      [&] {
        const auto r = last = http(port, "/metrics");
        if (r.exit != 0 || !r.out.starts_with("200 ")) return false;
        body = body_of(r.out);
        // The PUBACK may come a moment after the probe saw the message.
        return sample(body, R"(firegate_alarm_delivered_seconds_count{uplink="mqtt"})").value_or(0) >= 1;
      },
      10s);
  INFO("the last answer (" << last.exit << "): " << last.out.substr(0, 60000));
  REQUIRE(scraped);
  CHECK(last.out.substr(0, last.out.find('\n')).ends_with(" text/plain; version=0.0.4; charset=utf-8"));
  // HEAD: the length GET would have, no body.
  const auto head = http(port, "/metrics", "--method HEAD");
  INFO(head.out);
  REQUIRE(head.exit == 0);
  std::istringstream head_line(head.out);
  int status = 0;
  std::size_t length = 0, bytes = 1;
  head_line >> status >> length >> bytes;
  CHECK(status == 200);
  CHECK(length > 1000);
  CHECK(bytes == 0);
  // Two scrapes on one kept-alive connection.
  const auto twice = http(port, "/metrics", "--twice");
  CHECK(twice.exit == 0);
  CHECK(std::count(twice.out.begin(), twice.out.end(), '\n') == 2);
  CHECK(twice.out.starts_with("200 "));
  CHECK(twice.out.find("\n200 ") != std::string::npos);

  // Prometheus's own checker: the format, and its naming rules (units, _total on counters).
  const auto checked = promtool(dir, body, "scrape.txt");
  INFO("promtool said: " << checked.out);
  CHECK(checked.exit == 0);
  CHECK(checked.out.empty());  // not even a lint warning

  // What happened, as the figures say it.
  CHECK(sample(body, R"(firegate_alarms_open{category="fire"})") == 1);
  CHECK(sample(body, R"(firegate_alarms_unacknowledged)") == 1);
  CHECK(sample(body, R"(firegate_events_total{type="fire_alarm",category="fire"})") == 1);
  CHECK(sample(body, R"(firegate_events_total{type="fire_recovery",category="recovery"})") == 0);
  // The fire's path, one observation a stage (the only fire or supervisory alarm): within the
  // 10 s the test waited for it, and in cumulative buckets.
  for (const char* stage : {"decided", "stored"}) {
    CAPTURE(stage);
    CHECK(sample(body, fmt::format(R"(firegate_alarm_latency_seconds_count{{stage="{}"}})", stage)) == 1);
    CHECK(sample(body, fmt::format(R"(firegate_alarm_latency_seconds_bucket{{stage="{}",le="+Inf"}})",
                                   stage)) == 1);
    CHECK(
        sample(body, fmt::format(R"(firegate_alarm_latency_seconds_sum{{stage="{}"}})", stage)).value_or(99) <
        10);
  }
  CHECK(sample(body, R"(firegate_alarm_delivered_seconds_count{uplink="mqtt"})") == 1);
  CHECK(sample(body, R"(firegate_alarm_delivered_seconds_bucket{uplink="mqtt",le="+Inf"})") == 1);
  CHECK(sample(body, R"(firegate_uplink_connected{uplink="mqtt"})") == 1);
  CHECK(sample(body, R"(firegate_uplink_connects_total{uplink="mqtt"})").value_or(0) >= 1);
  CHECK(sample(body, R"(firegate_uplink_ack_seconds_count{uplink="mqtt"})").value_or(0) >= 1);
  CHECK(sample(body, R"(firegate_outbox_waiting{uplink="mqtt",lane="alarm"})").has_value());
  CHECK(sample(body, R"(firegate_device_online{bus="tcp-1",device="smoke-1"})") == 1);
  CHECK(sample(body, R"(firegate_device_polls_total{bus="tcp-1",device="smoke-2"})").value_or(0) > 0);
  CHECK(sample(body, R"(firegate_device_timeouts_total{bus="tcp-1",device="smoke-2"})") == 0);
  CHECK(sample(body, R"(firegate_device_response_seconds_count{bus="tcp-1",device="smoke-1"})").value_or(0) >
        0);
  CHECK(sample(body, R"(firegate_bus_devices_online{bus="tcp-1",driver="modbus_tcp"})") == 2);
  CHECK(sample(body, "firegate_store_used_bytes").value_or(0) > 0);
  CHECK(sample(body, "firegate_store_faulty") == 0);
  CHECK(sample(body, "firegate_store_readable") == 1);
  CHECK(sample(body, R"(firegate_config_reloads_total{outcome="applied"})") == 0);

  // firegatectl metrics: the same exposition over the control socket.
  const auto by_ctl = ctl(dir, {"metrics"});
  REQUIRE(by_ctl.exit == 0);
  CHECK(promtool(dir, by_ctl.out, "ctl.txt").exit == 0);
  CHECK(families(by_ctl.out) == families(body));

  // A reload (the same file) is counted as applied.
  REQUIRE(::kill(daemon.pid(), SIGHUP) == 0);
  REQUIRE(wait_until(
      [&] {
        const auto r = http(port, "/metrics");
        return sample(body_of(r.out), R"(firegate_config_reloads_total{outcome="applied"})") == 1;
      },
      10s));

  // What the endpoint refuses.
  CHECK(http(port, "/nothing-here").out.starts_with("404 "));
  CHECK(http(port, "/metrics", "--method POST").out.starts_with("405 "));
  CHECK(http(port, "/").out.starts_with("200 "));
  // Connections that say nothing hold every session: the next is answered 503 (its request read
  // first, so that the answer is not lost to a reset), and once they go, scrapes are served. Ten,
  // not eight: a session of an earlier probe may still count until the daemon sees it closed; past
  // eight and the four refusals, a connection is closed at once (the probe's then fails).
  const auto busy = http(port, "/metrics", "--idle 10");
  INFO(busy.out);
  CHECK(busy.out.starts_with("503 "));
  CHECK(wait_until([&] { return http(port, "/metrics", "").out.starts_with("200 "); }, 10s));
}

TEST_CASE(
    "metrics: a port already taken is logged with what to check - the gateway runs on - a reload once it is "
    "free opens the endpoint") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 1);
  // Someone else listens on the port first.
  const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // not held by the children
  REQUIRE(taken >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(taken, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(taken, 1) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(taken, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  const auto port = ntohs(a.sin_port);
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  text += fmt::format("\n[metrics]\nenabled = true\nlisten = \"127.0.0.1:{}\"\n", port);
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(wait_until(
      [&] { return daemon.log_text().find("metrics endpoint unavailable") != std::string::npos; }, 10s));
  const auto log = daemon.log_text();
  CHECK(log.find(fmt::format("listen=127.0.0.1:{}", port)) != std::string::npos);
  CHECK(log.find("check that no other program uses the port") != std::string::npos);
  // The gateway's job goes on: telemetry, and firegatectl metrics still answers.
  CHECK(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));
  const auto by_ctl = ctl(dir, {"metrics"});
  CHECK(by_ctl.exit == 0);
  CHECK(sample(by_ctl.out, R"(firegate_device_online{bus="tcp-1",device="smoke-1"})") == 1);
  // The port is freed; a reload of the same file opens the endpoint.
  ::close(taken);
  REQUIRE(::kill(daemon.pid(), SIGHUP) == 0);
  const bool served = wait_until([&] { return http(port, "/metrics", "").out.starts_with("200 "); }, 10s);
  INFO(daemon.log_text());
  CHECK(served);
  CHECK(daemon.log_text().find("metrics endpoint listening") != std::string::npos);
}
