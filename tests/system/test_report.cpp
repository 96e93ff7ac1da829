// Report strategies end to end (docs/uplink.md, "Report strategies"): firegated polling simulated
// SD-1 detectors sends the platform what changed and the keep-alives, not every poll; an alarm goes
// at once with its evidence; every poll is still in the database.

#include "domain/time_text.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

/// Every poll the platform received of `device`: its time (epoch ms) and its points.
std::map<std::int64_t, json> polls_received(mqtt_probe& platform, const std::string& device) {
  std::map<std::int64_t, json> out;
  for (const auto& m : platform.messages()) {
    if (!m.topic.ends_with("/telemetry")) continue;
    const auto j = json::parse(m.payload, nullptr, false);
    if (!j.is_object()) continue;
    for (const auto& poll : j["polls"]) {
      if (poll.value("device", "") != device) continue;
      const auto t = firegate::parse_iso8601(poll.value("time", ""));
      if (!t) continue;
      out[std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count()] =
          poll["points"];
    }
  }
  return out;
}

/// Polls of `device` in the database (its first series' device), read with SQLite, not firegate.
std::int64_t polls_stored(const std::filesystem::path& db, const std::string& device) {
  sqlite3* c = nullptr;
  std::int64_t n = -1;
  if (sqlite3_open_v2(db.string().c_str(), &c, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* q = nullptr;
    const auto sql =
        "SELECT COUNT(*) FROM polls p JOIN layouts l ON l.id = p.layout JOIN series s ON s.id = "
        "CAST(l.series AS INTEGER) WHERE s.device = ?";
    if (sqlite3_prepare_v2(c, sql, -1, &q, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(q, 1, device.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
  }
  sqlite3_close(c);
  return n;
}

}  // namespace

TEST_CASE(
    "report strategies: quiet detectors send their first values and keep-alives, not every poll - a fire "
    "goes "
    "at once with its evidence and its new values - every poll is stored") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 2);  // values wander within the SD-1's deadbands, as quiet detectors' do
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2);
  // Both keep the SD-1's changes beyond its deadbands (no `on`). smoke-1 without its 10 s limit (a
  // change goes with the next poll) and its hourly keep-alive (a run across the hour would add one);
  // smoke-2 (the last device) keeping alive every 2 s.
  text.insert(text.find("[[devices]]\nname = \"smoke-2\""),
              "[devices.report.\"*\"]\nat_most_every_s = 0\nat_least_every_s = 0\n");
  text += "[devices.report.\"*\"]\nat_least_every_s = 2\nat_most_every_s = 0\n";
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());

  // smoke-2's keep-alives and smoke-1's stored polls mark the time: 40 polls of smoke-1 stored (the
  // alarm group every 50 ms, every point every 500 ms) and smoke-2's fourth report sent.
  REQUIRE(wait_until(
      [&] {
        return polls_received(platform, "smoke-2").size() >= 4 &&
               polls_stored(dir / "fg.db", "smoke-1") >= 40;
      },
      30s));
  const auto quiet = polls_received(platform, "smoke-1");
  INFO("smoke-1 sent " << quiet.size() << " polls");
  // The first values of every point, then nothing: the wander stays within the deadbands.
  REQUIRE(quiet.size() == 1);
  CHECK(quiet.begin()->second.size() == 4);

  // smoke-2: each point once a 2 s period (the alarm group's points in its fast poll, the supply
  // voltage in the next full poll), each on a new period.
  std::map<std::string, std::vector<std::int64_t>> periods;  // by point
  for (const auto& [t, points] : polls_received(platform, "smoke-2")) {
    for (const auto& [name, value] : points.items()) periods[name].push_back(t / 2000);
  }
  CHECK(periods.size() == 4);
  for (const auto& [name, seen] : periods) {
    INFO(name);
    CHECK(seen.size() >= 2);
    CHECK(std::adjacent_find(seen.begin(), seen.end(), std::greater_equal<>()) == seen.end());
  }

  // A fire: the alarm at once with its evidence, and the values that moved in telemetry.
  sim.send("1 smoke 2.5");
  sim.send("1 state 1");
  auto fire = wait_event_where(platform, "fire_alarm",
                               [](const json& j) { return j["device"].value("name", "") == "smoke-1"; });
  REQUIRE(fire);
  const auto* smoke = find_by((*fire)["evidence"], "name", "smoke");
  REQUIRE(smoke != nullptr);
  // The simulator's noise: within 0.02 of what it was told.
  CHECK((*smoke)["value"].get<double>() == Approx(2.5).margin(0.03));
  const auto sent = [&](const std::string& point, double value) {
    for (const auto& [t, points] : polls_received(platform, "smoke-1")) {
      if (points.contains(point) && std::abs(points[point]["value"].get<double>() - value) <= 0.03)
        return true;
    }
    return false;
  };
  REQUIRE(wait_until([&] { return sent("state", 1) && sent("smoke", 2.5); }, 10s));
  // Still no poll without a change: each new value once (the smoke may go a poll before the state),
  // not again while it stands.
  CHECK(polls_received(platform, "smoke-1").size() <= 3);
  CHECK(daemon.stop(SIGTERM) == 0);
}
