// The store's telemetry: stored once as polls, queued as ranges of them, read back as they were, and
// with report strategies only the values sent (every poll still stored).

#include "store/store.hpp"
#include "store_fixtures.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

using namespace firegate;
using test::polls_of;

TEST_CASE("telemetry is stored once: outbox items name ranges of readings and read back as they were") {
  test::temp_dir dir;
  store s((dir / "fg.db").string());
  const auto start = clock::time_point(std::chrono::seconds(1'790'000'000));
  auto batch = polls_of("smoke-1", 5, start);
  s.append_telemetry(batch, "t/telemetry", 2);  // 5 polls, 2 a message: 3 messages
  CHECK(s.reading_count() == 20);
  auto items = s.pending(10, {});
  REQUIRE(items.size() == 3);
  std::vector<std::size_t> sizes;
  for (const auto& i : items) {
    CHECK(i.lane == lane::telemetry);
    CHECK(i.topic == "t/telemetry");
    CHECK(i.payload.empty());
    sizes.push_back(i.readings.size());
  }
  // Newest first, then oldest: the last poll alone, the first two, the middle two.
  CHECK(sizes == std::vector<std::size_t>{4, 8, 8});
  const auto& first = items[1].readings;
  for (std::size_t i = 0; i < first.size(); ++i) {
    CHECK(first[i].device == batch[i].device);
    CHECK(first[i].point == batch[i].point);
    CHECK(first[i].value == batch[i].value);
    CHECK(first[i].unit == batch[i].unit);
    CHECK(first[i].time == batch[i].time);
  }
  // Readings without a topic are history only.
  s.append_readings(polls_of("smoke-2", 3, start));
  CHECK(s.pending(10, {}).size() == 3);
  CHECK(s.reading_count() == 32);
}

TEST_CASE("report strategies: every poll is stored - telemetry carries only the readings reported") {
  test::temp_dir dir;
  const auto start = clock::time_point(std::chrono::seconds(1'790'000'000));
  {
    store s((dir / "fg.db").string());
    auto batch = polls_of("smoke-1", 6, start);  // 6 polls of 4 readings
    // Poll 0 whole (NULL mask), poll 2 its state only, poll 4 its temperature only; 1, 3, 5 nothing.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto poll = i / 4, point = i % 4;
      batch[i].reported = poll == 0 || (poll == 2 && point == 0) || (poll == 4 && point == 2);
    }
    // 3 polls reported, 2 a message: 2 messages. The live items name the readings of the batch
    // they cover, unreported polls between and after included (the application sends the reported).
    const auto queued = s.append_telemetry(batch, "t/telemetry", 2);
    REQUIRE(queued.size() == 2);
    CHECK((queued[0].first == 0 && queued[0].count == 12));
    CHECK((queued[1].first == 16 && queued[1].count == 8));
    CHECK(s.reading_count() == 24);
    // A poll of 70 values: bits 0-62 are one value each, bit 63 every value from the 64th on.
    std::vector<reading> wide;
    for (int i = 0; i < 70; ++i)
      wide.push_back(
          {"panel", fmt::format("p{}", i), double(i), "", quality::good, start + std::chrono::seconds(100)});
    for (auto& r : wide) r.reported = r.point == "p5" || r.point == "p65";
    CHECK(s.append_telemetry(wide, "t/telemetry", 2).size() == 1);
    // Only telemetry of nothing reported: stored, nothing queued.
    auto quiet = polls_of("smoke-2", 3, start);
    for (auto& r : quiet) r.reported = false;
    CHECK(s.append_telemetry(quiet, "t/telemetry", 2).empty());
    CHECK(s.reading_count() == 24 + 70 + 12);
  }
  store s((dir / "fg.db").string());  // read back from the file, not from memory
  auto items = s.pending(10, {});
  REQUIRE(items.size() == 3);
  std::map<clock::time_point, std::vector<std::string>> sent;
  for (const auto& i : items) {
    for (const auto& r : i.readings) sent[r.time].push_back(r.point);
  }
  REQUIRE(sent.size() == 4);
  CHECK(sent[start + std::chrono::seconds(100)] ==
        std::vector<std::string>{"p5", "p63", "p64", "p65", "p66", "p67", "p68", "p69"});
  sent.erase(start + std::chrono::seconds(100));
  auto it = sent.begin();
  CHECK(it->second == std::vector<std::string>{"state", "smoke", "temperature", "supply_voltage"});
  CHECK((++it)->second == std::vector<std::string>{"state"});
  CHECK((++it)->second == std::vector<std::string>{"temperature"});
  // The history has every poll: the export a technician runs is complete.
  const auto page = s.readings_between_times(start, start + std::chrono::seconds(50), "smoke-1", 0, 1000);
  CHECK(page.readings.size() == 24);
  // The mask is in the file as described (docs/storage.md): NULL for a whole poll, bit i for value i.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((dir / "fg.db").string().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT quote(report) FROM polls ORDER BY rowid LIMIT 6", -1, &q, nullptr) ==
          SQLITE_OK);
  std::vector<std::string> masks;
  while (sqlite3_step(q) == SQLITE_ROW)
    masks.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
  sqlite3_finalize(q);
  sqlite3_close(db);
  CHECK(masks == std::vector<std::string>{"NULL", "0", "1", "0", "4", "0"});
}
