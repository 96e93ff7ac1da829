// An upgrade with alarms waiting: a database as a firegated of schema 6 left it (the platform's
// firegate.event/1 messages in its outbox, one fire still open, a leakage alarm and its recovery
// undelivered), taken by this firegated with both uplinks: the platform over a real mosquitto, the
// town's centre as the reference GB/T 26875.3 centre, the detectors as firegate-sim. Every waiting
// alarm reaches both, each recovery after its alarm, the open fire is restored and ends when its
// detector reads normal, and the file is at the current schema with nothing of them left queued.

#include "gb_centre.hpp"
#include "old_schemas.hpp"
#include "store/store.hpp"
#include "support.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>

using namespace firegate::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// An event an older firegated raised and queued: its row, and its outbox item carrying the
/// platform's message (firegate.event/1) as that firegated wrote it.
struct old_event {
  int seq;
  std::string id, kind, device, location, point, unit, rule, alarm_id, detail;
  double value;
  std::chrono::system_clock::time_point time;
};

std::string old_message(const old_event& e) {
  const auto time =
      fmt::format("{:%Y-%m-%dT%H:%M:%S}.000Z", fmt::gmtime(std::chrono::system_clock::to_time_t(e.time)));
  json m{{"schema", "firegate.event/1"},
         {"id", e.id},
         {"seq", e.seq},
         {"gateway", "gw-test"},
         {"type", e.kind},
         {"category", "fire"},
         {"severity", e.kind == "fire_alarm" ? "critical" : "info"},
         {"time", time},
         {"summary", "as the older firegated wrote it"},
         {"detail", e.detail},
         {"site", {{"id", "site-test"}}},
         {"contacts", json::object()},
         {"device", {{"name", e.device}, {"location", e.location}}},
         {"test", false},
         {"state", e.kind == "fire_alarm" ? "active" : "recovered"},
         {"confirmation", "unconfirmed"},
         {"first_time", time},
         {"last_change", time},
         {"point", e.point},
         {"value", e.value},
         {"unit", e.unit},
         {"rule", e.rule}};
  if (!e.alarm_id.empty()) m["alarm_id"] = e.alarm_id;
  return m.dump();
}

void write_schema_6_database(const std::filesystem::path& path, const std::vector<old_event>& events) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  test::sql(db, "PRAGMA journal_mode=WAL");
  test::sql(db, test::schema_6_tables);
  for (const auto& e : events) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.time.time_since_epoch()).count();
    test::sql(db,
              fmt::format("INSERT INTO events (seq, id, kind, device, point, value, time_ms, alarm_id, "
                          "detail, rule) VALUES ({}, '{}', '{}', '{}', '{}', {}, {}, '{}', '{}', '{}')",
                          e.seq, e.id, e.kind, e.device, e.point, e.value, ms, e.alarm_id, e.detail, e.rule));
    char* quoted = sqlite3_mprintf("%Q", old_message(e).c_str());
    test::sql(db, fmt::format("INSERT INTO outbox (lane, topic, payload, delivered, created_ms) VALUES (0, "
                              "'firegate/site-test/gw-test/alarm', {}, 0, {})",
                              quoted, ms));
    sqlite3_free(quoted);
  }
  test::sql(db, "PRAGMA user_version = 6");
  REQUIRE(sqlite3_close(db) == SQLITE_OK);
}

std::int64_t upgrade_query(const std::filesystem::path& path, const char* text) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, text, -1, &q, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(q) == SQLITE_ROW);
  const auto v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return v;
}

/// Where the message of event `id` (and `type`) stands among what the platform received; -1 if absent.
long platform_index(mqtt_probe& platform, const std::string& type, const std::string& key,
                    const std::string& value) {
  const auto all = platform.messages();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!is_event(all[i], type)) continue;
    const auto j = json::parse(all[i].payload, nullptr, false);
    if (j.is_object() && j.value(key, "") == value) return static_cast<long>(i);
  }
  return -1;
}

/// Where the first send of the frame `match` takes stands among the centre's frames; -1 if absent.
long centre_index(const gb_centre& centre, const std::function<bool(const json&)>& match) {
  const auto frames = centre.frames();
  const auto it = std::find_if(frames.begin(), frames.end(), match);
  return it == frames.end() ? -1 : static_cast<long>(it - frames.begin());
}

}  // namespace

TEST_CASE(
    "upgrade: alarms a schema-6 firegated left queued reach the platform and the centre, each recovery after "
    "its alarm - the open fire is restored and ends - nothing of them is left queued") {
  temp_dir dir;
  const auto db = dir / "fg.db";
  const auto before = std::chrono::system_clock::now() - 5min;
  // A fire of smoke-201 still open; a leakage fire of ef-kitchen, and its end.
  write_schema_6_database(
      db, {{1, "old-fire", "fire_alarm", "smoke-201", "room 201 (before the upgrade)", "state", "", "fire",
            "", "state is fire", 1, before},
           {2, "old-leak", "fire_alarm", "ef-kitchen", "kitchen board", "residual_current", "mA", "leakage",
            "", "leakage over its setting", 620, before + 10s},
           {3, "old-leak-end", "fire_recovery", "ef-kitchen", "kitchen board", "residual_current", "mA",
            "leakage", "old-leak", "leakage back under its setting", 80, before + 70s}});

  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  gb_centre centre(dir);
  simulator sim(dir, {"--devices", "SD-1:1", "--devices", "EFD-4T:2"});
  std::ofstream(dir / "fg.toml") << site_header(db, mosquitto.port()) +
                                        gb_site_tail(centre.port(), sim.port());
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");

  // The platform: each queued message, written again at send time from what it carried, with the
  // site's device as configured now.
  const auto fire =
      wait_event_where(platform, "fire_alarm", [](const json& j) { return j.value("id", "") == "old-fire"; });
  REQUIRE(fire);
  CHECK(fire->value("seq", 0) == 1);
  CHECK((*fire)["device"].value("name", "") == "smoke-201");
  CHECK((*fire)["device"].value("location", "") == "二楼 201 房");
  CHECK((*fire)["site"].value("name", "") == "Test Hostel");
  CHECK(fire->value("point", "") == "state");
  CHECK(fire->value("rule", "") == "fire");
  const auto leak =
      wait_event_where(platform, "fire_alarm", [](const json& j) { return j.value("id", "") == "old-leak"; });
  REQUIRE(leak);
  CHECK(leak->value("value", 0.0) == 620.0);
  CHECK(leak->value("unit", "") == "mA");
  REQUIRE(wait_event_where(platform, "fire_recovery",
                           [](const json& j) { return j.value("id", "") == "old-leak-end"; }));
  CHECK(platform_index(platform, "fire_alarm", "id", "old-leak") <
        platform_index(platform, "fire_recovery", "id", "old-leak-end"));
  // The restored fire ends when its detector reads normal (latch = false): after the alarm.
  const auto ended = wait_event_where(platform, "fire_recovery",
                                      [](const json& j) { return j.value("alarm_id", "") == "old-fire"; });
  REQUIRE(ended);
  CHECK(platform_index(platform, "fire_alarm", "id", "old-fire") <
        platform_index(platform, "fire_recovery", "alarm_id", "old-fire"));

  // The centre: the same alarms as component status, each end after its fire.
  REQUIRE(centre.wait_frame(status_of(101, 0x0003)));
  REQUIRE(centre.wait_frame(status_of(102, 0x0003)));
  REQUIRE(centre.wait_frame(status_of(102, 0x0001)));
  REQUIRE(centre.wait_frame(status_of(101, 0x0001)));
  CHECK(centre_index(centre, status_of(102, 0x0003)) < centre_index(centre, status_of(102, 0x0001)));
  CHECK(centre_index(centre, status_of(101, 0x0003)) < centre_index(centre, status_of(101, 0x0001)));
  for (const auto& f : centre.frames(2)) {
    for (const auto& o : f["data"]["objects"]) {
      if (o.value("component address", 0) == 101) CHECK(o.value("description", "") == "二楼 201 房");
    }
  }

  // Both uplinks report nothing left in the alarm and fault lanes.
  CHECK(wait_until(
      [&] {
        const auto s = ctl(dir, {"--json", "status"}).doc();
        return s.is_object() && s["uplink"]["outbox"].value("alarm", 1) == 0 &&
               s["uplink"]["outbox"].value("event", 1) == 0 && s["gb26875"].value("queued", 1) == 0;
      },
      15s));
  CHECK(daemon.stop(SIGTERM) == 0);
  CHECK(upgrade_query(db, "PRAGMA user_version") == firegate::store::schema_version());
  CHECK(upgrade_query(db, "SELECT COUNT(*) FROM outbox WHERE lane < 2") == 0);
  CHECK(upgrade_query(
            db, "SELECT COUNT(*) FROM events WHERE id IN ('old-fire', 'old-leak', 'old-leak-end')") == 3);
  const auto log = daemon.log_text();
  CHECK(log.find("is not an event this build can read") == std::string::npos);
  CHECK(log.find("cannot map") == std::string::npos);
}
