// The store's migrations against files written by hand as older firegated versions left them
// (tests/support/old_schemas.hpp): what was stored reads back the same after each.

#include "old_schemas.hpp"
#include "store/store.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <vector>

using namespace firegate;

namespace {

/// "device/point@ms=value", " bad" after a bad one: the value printed exactly (the shortest text
/// that reads back as the same double).
std::vector<std::string> as_text(const std::vector<reading>& readings) {
  std::vector<std::string> out;
  for (const auto& r : readings) {
    out.push_back(
        fmt::format("{}/{}@{}={}{}", r.device, r.point,
                    std::chrono::duration_cast<std::chrono::milliseconds>(r.time.time_since_epoch()).count(),
                    r.value, r.q == quality::good ? "" : " bad"));
  }
  return out;
}

}  // namespace

TEST_CASE("schema 1 to 2: readings keep their values and gain series ids") {
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  // Schema 1 as firegate 0.1.0 wrote it, with three readings of two series.
  test::sql(db, R"sql(
    CREATE TABLE readings (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, device TEXT NOT NULL,
      point TEXT NOT NULL, value REAL NOT NULL, quality INTEGER NOT NULL);
    CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
      device TEXT NOT NULL, point TEXT NOT NULL, value REAL NOT NULL, time_ms INTEGER NOT NULL,
      alarm_id TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE TABLE outbox (id INTEGER PRIMARY KEY, lane INTEGER NOT NULL, topic TEXT NOT NULL,
      payload TEXT NOT NULL);
    CREATE INDEX outbox_by_lane ON outbox (lane, id);
    INSERT INTO readings (time_ms, device, point, value, quality) VALUES
      (1000, 'smoke-1', 'state', 0, 0), (1000, 'smoke-1', 'smoke', 0.02, 0), (2000, 'smoke-1', 'state', 1, 0);
    PRAGMA user_version = 1;
  )sql");
  sqlite3_close(db);
  {
    store s(path);
    CHECK(s.user_version() == store::schema_version());
    CHECK(s.reading_count() == 3);
    std::vector<reading> more{
        {"smoke-1", "state", 0, "", quality::good, clock::time_point(std::chrono::seconds(3))},
        {"smoke-2", "state", 1, "", quality::bad, clock::time_point(std::chrono::seconds(3))}};
    s.append_readings(more);
    CHECK(s.reading_count() == 5);
  }
  // Read back through the store (schema 8 packs them a row a poll).
  store s(path);
  const auto page =
      s.readings_between_times(clock::time_point{}, clock::time_point(std::chrono::hours(1)), "", 0, 100);
  CHECK(as_text(page.readings) == std::vector<std::string>{"smoke-1/state@1000=0", "smoke-1/smoke@1000=0.02",
                                                           "smoke-1/state@2000=1", "smoke-1/state@3000=0",
                                                           "smoke-2/state@3000=1 bad"});
}

TEST_CASE("schema 7 to 8: readings packed a row a poll - telemetry's ranges follow them - nothing lost") {
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  // Schema 7's tables as migrations 1-7 left them, written by hand (tests/support). Readings 1-3 are a poll
  // of smoke-1 and one of smoke-2 at 1000; 4-6 two polls at 2000 (smoke-2's bad); 7-8 were evicted; 9-10 a
  // poll at 4000. Telemetry: items over 1-3, 4-6, 7-8 (all gone) and 5-10 (partly gone).
  test::sql(db, test::schema_6_tables);
  test::sql(db, R"sql(
    INSERT INTO series VALUES (1, 'smoke-1', 'state', ''), (2, 'smoke-1', 'temperature', '°C'),
      (3, 'smoke-2', 'state', '');
    INSERT INTO readings (rowid, time_ms, series, value, quality) VALUES
      (1, 1000, 1, 0, 0), (2, 1000, 2, 21.5, 0), (3, 1000, 3, 0, 0),
      (4, 2000, 1, 1, 0), (5, 2000, 2, 0.1 + 0.2, 0), (6, 2000, 3, 2, 1),
      (9, 4000, 1, 0, 0), (10, 4000, 2, -3.25, 0);
    INSERT INTO outbox (id, lane, topic, payload, delivered, created_ms, first_reading, last_reading) VALUES
      (1, 2, 't', '', 0, 1, 1, 3), (2, 2, 't', '', 0, 2, 4, 6), (3, 2, 't', '', 0, 3, 7, 8),
      (4, 2, 't', '', 0, 4, 5, 10), (5, 0, 'a', '{}', 0, 5, NULL, NULL);
    PRAGMA user_version = 7;
  )sql");
  sqlite3_close(db);
  store s(path);
  CHECK(s.user_version() == store::schema_version());
  CHECK(s.reading_count() == 8);
  // Every reading, in order, each value the same double (0.1 + 0.2 is not 0.3).
  const auto all =
      s.readings_between_times(clock::time_point{}, clock::time_point(std::chrono::hours(1)), "", 0, 100);
  CHECK(as_text(all.readings) ==
        std::vector<std::string>{"smoke-1/state@1000=0", "smoke-1/temperature@1000=21.5",
                                 "smoke-2/state@1000=0", "smoke-1/state@2000=1",
                                 "smoke-1/temperature@2000=0.30000000000000004", "smoke-2/state@2000=2 bad",
                                 "smoke-1/state@4000=0", "smoke-1/temperature@4000=-3.25"});
  // The alarm first, then the telemetry items whose readings are left, each covering whole polls
  // (item 4 began inside the poll of readings 4-5 and now starts with it); item 3's are all gone.
  const auto items = s.pending(0, 10, {});
  std::map<std::int64_t, std::vector<std::string>> telemetry;
  for (const auto& item : items) {
    if (item.lane == lane::telemetry) telemetry[item.id] = as_text(item.readings);
  }
  REQUIRE_FALSE(items.empty());
  CHECK(items.front().id == 5);
  CHECK(telemetry.size() == 3);
  const std::vector<std::string> at_1000{"smoke-1/state@1000=0", "smoke-1/temperature@1000=21.5",
                                         "smoke-2/state@1000=0"};
  const std::vector<std::string> at_2000{
      "smoke-1/state@2000=1", "smoke-1/temperature@2000=0.30000000000000004", "smoke-2/state@2000=2 bad"};
  auto from_2000 = at_2000;
  from_2000.insert(from_2000.end(), {"smoke-1/state@4000=0", "smoke-1/temperature@4000=-3.25"});
  CHECK(telemetry[1] == at_1000);
  CHECK(telemetry[2] == at_2000);
  CHECK(telemetry[4] == from_2000);
  // The last value of each point, and a poll stored after the migration.
  CHECK(as_text(s.latest_readings("smoke-1")) ==
        std::vector<std::string>{"smoke-1/state@4000=0", "smoke-1/temperature@4000=-3.25"});
  std::vector<reading> more{
      {"smoke-2", "state", 1, "", quality::good, clock::time_point(std::chrono::seconds(5))}};
  s.append_readings(more);
  CHECK(s.reading_count() == 9);
  CHECK(as_text(s.latest_readings("smoke-2")) == std::vector<std::string>{"smoke-2/state@5000=1"});
}

TEST_CASE("store schema: docs/storage.md names the schema firegated runs, and each migration up to it") {
  // The docs are what an integrator reads before touching a file: they must not lag the code.
  const auto doc = test::read_text(test::source_dir() + "/docs/storage.md");
  const int current = store::schema_version();
  INFO("schema " << current);
  CHECK(doc.find(fmt::format("**The current schema is {}.**", current)) != std::string::npos);
  // "7 → 8" as a migration, not inside a figure such as "0.7 → 8.1".
  const auto names = [&](int from) {
    return std::regex_search(doc, std::regex(fmt::format("(^|[^0-9.]){} → {}([^0-9.]|$)", from, from + 1)));
  };
  for (int v = 1; v < current; ++v) {
    INFO("migration " << v << " → " << v + 1);
    CHECK(names(v));
  }
  CHECK_FALSE(names(current));
  // And a real file is at that version once opened.
  test::temp_dir dir;
  { store s((dir / "fg.db").string()); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / "fg.db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == current);
  sqlite3_finalize(st);
  sqlite3_close(db);
}
