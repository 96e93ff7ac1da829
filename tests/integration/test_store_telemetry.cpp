// The store's telemetry: stored once as polls, queued as ranges of them, read back as they were, and
// with report strategies only the values sent (every poll still stored).

#include "store/store.hpp"
#include "store_fixtures.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <span>
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

TEST_CASE(
    "polls of several layouts a device, interleaved - each read back with its own points - one layout row "
    "each") {
  // A device's polls alternate between its alarm group and its full poll, and a reload may give it
  // a third set of points: the store finds each poll's layout from the device's recent ones, and a
  // poll must never be named with another poll's points.
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  const auto t0 = clock::time_point(std::chrono::seconds(1'800'000'000));
  const std::vector<std::vector<std::string>> shapes{
      {"state"}, {"state", "smoke", "temperature"}, {"state", "smoke", "supply_voltage"}};  // two of one size
  // Poll p of device d has shape (p + d) % 3 for p < 12, then the first and the third by turns; its
  // values are 100 * p + the point's index, so each reading says which poll and place it came from.
  std::vector<reading> all;
  for (int p = 0; p < 20; ++p) {
    for (const std::string device : {"d0", "d1"}) {
      const auto d = device == "d0" ? 0 : 1;
      const auto& shape = shapes[p < 12 ? (p + d) % 3 : (p % 2) * 2];
      for (std::size_t k = 0; k < shape.size(); ++k)
        all.push_back({device, shape[k], 100.0 * p + static_cast<double>(k), "", quality::good,
                       t0 + std::chrono::seconds(p)});
    }
  }
  {
    store s(path);
    // In three appends (at polls 7 and 14), so that the layouts one append saw are found again by
    // the next.
    const auto at = [&](int p) {
      return static_cast<std::size_t>(
          std::find_if(all.begin(), all.end(),
                       [&](const reading& r) { return r.time == t0 + std::chrono::seconds(p); }) -
          all.begin());
    };
    const std::span<const reading> span(all);
    s.append_readings(span.subspan(0, at(7)));
    s.append_readings(span.subspan(at(7), at(14) - at(7)));
    s.append_readings(span.subspan(at(14)));
  }
  store s(path);
  for (const auto* device : {"d0", "d1"}) {
    INFO(device);
    auto page = s.readings_between_times(t0, t0 + std::chrono::seconds(60), device, 0, 1000);
    std::vector<reading> expected;
    for (const auto& r : all)
      if (r.device == device) expected.push_back(r);
    REQUIRE(page.readings.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      INFO(i);
      CHECK(page.readings[i].point == expected[i].point);
      CHECK(page.readings[i].value == expected[i].value);
      CHECK(page.readings[i].time == expected[i].time);
    }
  }
  // Read by SQLite: one layout a device and shape, and each series once.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  const auto count = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const auto n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
  };
  CHECK(count("SELECT COUNT(*) FROM layouts") == 6);
  CHECK(count("SELECT COUNT(*) FROM series") == 8);
  CHECK(count("SELECT COUNT(*) FROM polls") == 40);
  sqlite3_close(db);
}
