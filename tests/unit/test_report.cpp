// Report strategies: which polls telemetry carries (domain/report.hpp), and how profiles and a
// site's [devices.report] set them (config/report_config.hpp).

#include "config/config_loader.hpp"
#include "config/report_config.hpp"
#include "domain/report.hpp"
#include "driver.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <sstream>

using namespace firegate;
using namespace std::chrono_literals;

namespace {

/// 2026-12-03T10:00:00Z: on the hour.
const clock::time_point hour{1'796'292'000s};

reading at(clock::time_point t, double v, quality q = quality::good, std::string point = "temperature") {
  return {"smoke-1", std::move(point), v, "°C", q, t};
}

/// The values `policy` reports of `values`, one a second from `start`.
std::vector<double> reported(const report_policy& policy, const std::vector<double>& values,
                             clock::time_point start = hour + 10s) {
  report_filter f;
  std::vector<double> out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (f.decide(at(start + std::chrono::seconds(i), values[i]), policy)) out.push_back(values[i]);
  }
  return out;
}

}  // namespace

TEST_CASE("report strategy: every poll, on change, beyond a deadband, in percent") {
  const std::vector<double> wander{21.5, 21.5, 21.6, 21.4, 22.6, 22.5, 22.5, 20.0};
  CHECK(reported({}, wander) == wander);  // the default: every poll, as before
  report_filter plain;
  CHECK(plain.decide(at(hour, 1), {}));
  CHECK(plain.points() == 0);  // nothing to remember for every poll

  report_policy change{report_policy::mode::change};
  CHECK(reported(change, wander) == std::vector<double>{21.5, 21.6, 21.4, 22.6, 22.5, 20.0});

  // Against the last value reported, not the last read: 21.6 and 21.4 are within 1 of 21.5; 22.6
  // is 1.1 from it; 22.5 is within 1 of 22.6; 20.0 is 2.6 below.
  report_policy band{report_policy::mode::change, 1.0};
  CHECK(reported(band, wander) == std::vector<double>{21.5, 22.6, 20.0});
  // A slow drift is reported once it has moved the deadband in all, not never.
  CHECK(reported(band, {20.0, 20.4, 20.8, 21.2, 21.6, 22.0, 22.4}) == std::vector<double>{20.0, 21.2, 22.4});

  // 10 % of the last value reported: 100 -> 109 stays, 111 goes, then 10 % of 111.
  report_policy percent{report_policy::mode::change, 10, true};
  CHECK(reported(percent, {100, 109, 111, 120, 123}) == std::vector<double>{100, 111, 123});
  // From 0 any change is beyond 0 %.
  CHECK(reported(percent, {0, 0, 0.1}) == std::vector<double>{0, 0.1});
}

TEST_CASE("report strategy: at most every N s holds a change back, at least every M s on the boundary") {
  report_policy limited{report_policy::mode::change, 0, false, 5s};
  // Values change every second; one goes every 5 s, the value standing then.
  CHECK(reported(limited, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) == std::vector<double>{1, 6, 11});
  // A change that reverts before the limit ends is not sent.
  CHECK(reported(limited, {1, 2, 1, 1, 1, 1, 1, 1}) == std::vector<double>{1});

  // Quiet values: a keep-alive on each whole period since the epoch, whatever the start.
  report_policy keepalive{report_policy::mode::change, 0, false, 0s, 60s};
  report_filter f;
  std::vector<clock::time_point> sent;
  for (auto t = hour + 10s; t < hour + 200s; t += 1s) {
    if (f.decide(at(t, 21.5), keepalive)) sent.push_back(t);
  }
  CHECK(sent == std::vector<clock::time_point>{hour + 10s, hour + 60s, hour + 120s, hour + 180s});
  // Two devices polled at different moments keep alive in the same period, so one message
  // carries both.
  report_filter g;
  CHECK(g.decide({"a", "t", 1, "", quality::good, hour + 5s}, keepalive));
  CHECK(g.decide({"b", "t", 1, "", quality::good, hour + 37s}, keepalive));
  CHECK_FALSE(g.decide({"a", "t", 1, "", quality::good, hour + 59s}, keepalive));
  CHECK(g.decide({"a", "t", 1, "", quality::good, hour + 60s}, keepalive));
  CHECK(g.decide({"b", "t", 1, "", quality::good, hour + 61s}, keepalive));
  CHECK(g.points() == 2);

  // Every poll at most every 10 s: a sample every 10 s.
  report_policy sampled{report_policy::mode::every_poll, 0, false, 10s};
  std::vector<double> ramp;
  for (int i = 0; i < 25; ++i) ramp.push_back(i);
  CHECK(reported(sampled, ramp) == std::vector<double>{0, 10, 20});
}

TEST_CASE("report strategy: a change of quality, the first value and a clock set back always go") {
  report_policy band{report_policy::mode::change, 5.0, false, 30s};
  report_filter f;
  CHECK(f.decide(at(hour, 21.5), band));
  CHECK_FALSE(f.decide(at(hour + 1s, 21.6), band));
  // A probe open: bad quality at once, though within the deadband and the 30 s limit.
  CHECK(f.decide(at(hour + 2s, 32767, quality::bad), band));
  CHECK_FALSE(f.decide(at(hour + 3s, 32767, quality::bad), band));
  CHECK(f.decide(at(hour + 4s, 21.5), band));  // and good again
  // Another point of the same device is its own.
  CHECK(f.decide(at(hour + 5s, 0, quality::good, "state"), band));
  // The clock stepped back an hour: nothing to measure from, so it goes.
  CHECK(f.decide(at(hour - 3600s, 21.5), band));
  // NaN (a float32 point's no-value) against a number is a change; NaN again is not.
  report_policy change{report_policy::mode::change};
  CHECK(reported(change, {1, std::nan(""), std::nan(""), 1}).size() == 3);
  f.clear();
  CHECK(f.points() == 0);
  CHECK(f.decide(at(hour + 6s, 21.6), band));
}

TEST_CASE("report strategy: a profile's default, its points' own keys and a device's overrides") {
  // The shipped SD-1: on change, hourly, deadbands on its measured values.
  // The new site's file (the shipped profiles resolve beside it), with two detectors.
  const auto file = test::source_dir() + "/config/firegate-new-site.toml";
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf() << R"(
[[buses]]
name = "b"
driver = "modbus_tcp"
host = "127.0.0.1"
[[devices]]
name = "kitchen"
bus = "b"
location = "ground floor"
profile = "SD-1"
unit_id = 1
[[devices]]
name = "hall"
bus = "b"
location = "ground floor"
profile = "SD-1"
unit_id = 2
[devices.report."*"]
on = "poll"
at_most_every_s = 60
[devices.report.smoke]
on = "change"
deadband_percent = 20
[[devices]]
name = "office"
bus = "b"
location = "first floor"
profile = "SD-1"
unit_id = 3
[devices.report.temperature]
deadband = 2
)";
  auto r = config::load_config_text(text.str(), file, driver_parsers());
  INFO(r.error_text());
  REQUIRE(r.config);
  const auto& cat = r.config->catalogue;
  const auto& state = cat.find("kitchen")->report("state");
  CHECK(state.on == report_policy::mode::change);
  CHECK(state.deadband == 0);
  CHECK(state.at_least_every == 3600s);
  const auto& smoke = cat.find("kitchen")->report("smoke");
  CHECK(smoke.deadband == 0.05);
  CHECK(smoke.at_most_every == 10s);
  CHECK(smoke.at_least_every == 3600s);
  CHECK(to_string(smoke) == "change > 0.05, at most every 10 s, at least every 3600 s");
  // "*" first, the named point over it.
  const auto& hall_state = cat.find("hall")->report("state");
  CHECK(hall_state.on == report_policy::mode::every_poll);
  CHECK(hall_state.at_most_every == 60s);
  CHECK(hall_state.at_least_every == 0s);  // `on` gives a whole strategy: nothing of the profile's
  // `on` again: the smoke's strategy is its own (not the "*" one's 60 s, nor the profile's 10 s).
  const auto& hall_smoke = cat.find("hall")->report("smoke");
  CHECK(hall_smoke.on == report_policy::mode::change);
  CHECK(hall_smoke.deadband == 20);
  CHECK(hall_smoke.deadband_percent);
  CHECK(hall_smoke.at_most_every == 0s);
  CHECK(to_string(hall_smoke) == "change > 20 %");
  // Without `on`, keys change the profile's strategy.
  CHECK(to_string(cat.find("office")->report("temperature")) ==
        "change > 2, at most every 10 s, at least every 3600 s");
  CHECK(cat.find("office")->reports != nullptr);
  CHECK(cat.find("kitchen")->reports == nullptr);  // no overrides: the model's, shared
  // A point the model does not have: every poll.
  CHECK(cat.find("hall")->report("nothing").on == report_policy::mode::every_poll);
}

TEST_CASE("report strategy: each mistake is named with its key and the fix") {
  model_description model;
  model.points = {{"state", "", {}, {}}, {"smoke", "dB/m", {}, {}}};
  struct row {
    std::string text;
    std::string path;
    std::string says;
  };
  const std::vector<row> rows{
      {"[report.smoke]\non = \"change\"\ndeadband = 1\ndeadband_percent = 5\n",
       "devices[0].report.smoke.deadband_percent", "not both"},
      {"[report.smoke]\ndeadband = 1\n", "devices[0].report.smoke.deadband",
       "a deadband is for on = \"change\""},
      {"[report.smoke]\non = \"sometimes\"\n", "devices[0].report.smoke.on", "poll"},
      {"[report.smoke]\non = \"change\"\nat_most_every_s = 60\nat_least_every_s = 30\n",
       "devices[0].report.smoke.at_least_every_s", "make at_least_every_s the larger"},
      {"[report.smoke]\nat_least_every_s = -1\n", "devices[0].report.smoke.at_least_every_s", "0"},
      {"[report.smok]\non = \"change\"\n", "devices[0].report.smok",
       "no point \"smok\" in this device's profile; did you mean \"smoke\"? its points are: state, smoke"},
      {"[report.smoke]\non = \"change\"\ndeadbnd = 1\n", "devices[0].report.smoke.deadbnd", "unknown"},
  };
  for (const auto& [text, path, says] : rows) {
    INFO(text);
    config::config_errors errors;
    const auto root = toml::parse(text, std::string_view("site.toml"));
    config::config_node device(root, "devices[0]", errors);
    CHECK(config::device_reports(device, model) == nullptr);
    REQUIRE_FALSE(errors.items().empty());
    CHECK(errors.items()[0].path == path);
    CHECK_THAT(errors.items()[0].message, Catch::Contains(says));
  }
}
