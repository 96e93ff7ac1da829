// The store with real damage in a real file: pages overwritten through plain file I/O after SQLite
// itself (its dbstat table, its own connection) says where a table lives. What must hold: alarms are
// read past damaged telemetry, a damaged file is moved aside with what it still gives carried over
// under the same ids, and new ids never meet old ones.

#include "store/store.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <set>

using namespace firegate;

namespace {

event fire(const std::string& id, std::uint64_t seq) {
  event e;
  e.id = id;
  e.seq = seq;
  e.kind = event_kind::fire_alarm;
  e.device = "smoke-1";
  e.point = "state";
  e.value = 1;
  e.time = clock::now();
  e.rule = "fire";
  return e;
}

/// One value of a query on the file, through SQLite's own connection (not the store's).
std::int64_t query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr) == SQLITE_OK);
  const auto rc = sqlite3_step(q);
  const std::int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
  sqlite3_finalize(q);
  sqlite3_close(db);
  return v;
}

/// Everything into the main file, then page `page` (1-based) overwritten with bytes no page holds.
void smash(const std::string& path, std::int64_t page) {
  REQUIRE(query(path, "PRAGMA wal_checkpoint(TRUNCATE)") == 0);
  REQUIRE(page > 1);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp((page - 1) * 4096);
  const std::string noise(4096, '\xA5');
  f.write(noise.data(), static_cast<std::streamsize>(noise.size()));
}

/// Two alarms and a telemetry backlog of several pages.
std::set<std::int64_t> fill(store& s) {
  std::set<std::int64_t> alarms;
  for (int i = 0; i < 2; ++i) {
    const auto e = fire("fire-" + std::to_string(i), s.next_event_seq());
    alarms.insert(s.record_event(e, lane::alarm, "t/alarm", nlohmann::json{{"id", e.id}}.dump()));
  }
  std::vector<reading> batch;
  for (int i = 0; i < 4000; ++i) {
    batch.push_back({"smoke-1", "temperature", 20.0 + i, "C", quality::good,
                     clock::now() + std::chrono::milliseconds(i)});
  }
  s.append_telemetry(batch, "t/telemetry", 1);
  return alarms;
}

}  // namespace

TEST_CASE(
    "store damage: alarms are read past a damaged telemetry page - the damage is noted, reads then fail") {
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  store s(path);
  const auto alarms = fill(s);
  smash(path, query(path, "SELECT MIN(pageno) FROM dbstat WHERE name = 'polls' AND pagetype = 'leaf'"));
  CHECK_FALSE(s.damaged());
  const auto items = s.pending(0, 20, {});
  REQUIRE(items.size() >= 2);
  CHECK(std::set<std::int64_t>{items[0].id, items[1].id} == alarms);
  CHECK(s.damaged());
  CHECK_THROWS_AS(s.check_outbox_readable(), store_corrupt);
  // With the alarms already held by the uplink, there is nothing readable to hand out: an error.
  CHECK_THROWS_AS(s.pending(0, 20, alarms), store_corrupt);
}

TEST_CASE(
    "store damage: replaced while running - undelivered alarms carried over under their ids, new ids above") {
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  store s(path);
  const auto alarms = fill(s);
  const auto old_max = query(path, "SELECT MAX(id) FROM outbox");
  const auto r = s.replace_damaged();
  REQUIRE(s.moved_aside());
  CHECK(std::filesystem::exists(s.moved_aside()->moved_to));
  CHECK(r.error.empty());
  CHECK(r.events == 2);
  CHECK(r.messages == 2);
  CHECK(r.outbox_complete);
  CHECK(r.resend.empty());
  const auto items = s.pending(0, 20, {});
  REQUIRE(items.size() == 2);  // the telemetry backlog stays in the moved file
  for (const auto& item : items) {
    CHECK(alarms.contains(item.id));
    CHECK(nlohmann::json::parse(item.payload).value("recovered", false));
  }
  CHECK(s.outbox_depth() == 2);  // the numbering marker is not counted
  CHECK(s.open_alarms().size() == 2);
  CHECK(s.next_event_seq() == 3);
  // A new message is numbered after every id the old file used.
  CHECK(s.enqueue(lane::fault, "t/event", "{}") > old_max);
  s.mark_delivered(0, std::vector<std::int64_t>(alarms.begin(), alarms.end()));
  CHECK(s.outbox_depth() == 1);
}

TEST_CASE(
    "store damage: the outbox table smashed - its list of ids counts what is lost, recent events go again") {
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  {
    store s(path);
    fill(s);
  }
  smash(path, query(path, "SELECT rootpage FROM sqlite_master WHERE name = 'outbox'"));
  store s(path);
  REQUIRE(s.moved_aside());
  INFO(s.moved_aside()->reason);
  CHECK(s.moved_aside()->reason.find("outbox") != std::string::npos);
  const auto r = s.salvage();
  CHECK(r.error.empty());
  CHECK(r.events == 2);
  CHECK(r.messages == 0);
  CHECK(r.messages_unreadable == 2);
  CHECK_FALSE(r.outbox_complete);
  REQUIRE(r.resend.size() == 2);
  CHECK(r.resend[0].id == "fire-0");
  CHECK(s.open_alarms().size() == 2);
}

TEST_CASE("store damage: an empty file or one without SQLite's header is damaged, not new") {
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  std::ofstream(path).close();  // 0 bytes
  {
    store s(path);
    REQUIRE(s.moved_aside());
    CHECK(s.moved_aside()->reason.find("empty (0 bytes)") != std::string::npos);
    const auto r = s.salvage();
    CHECK(r.error.find("no firegate tables") != std::string::npos);
  }
  std::filesystem::remove(path);
  std::ofstream(path) << "SQLite format 2\n";
  store s(path);
  REQUIRE(s.moved_aside());
  CHECK(s.moved_aside()->reason.find("header") != std::string::npos);
}

TEST_CASE(
    "store damage: the outbox's last page smashed while running - new ids stay above every id handed out") {
  // An uplink may hold any id it was given in flight; its acknowledgement must never mark a new
  // message delivered, even when the old file can no longer say how high its ids went.
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  store s(path);
  fill(s);
  const auto old_max = query(path, "SELECT MAX(id) FROM outbox");
  REQUIRE(old_max > 1000);
  smash(path, query(path, "SELECT MAX(pageno) FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf'"));
  CHECK(s.pending(0, 20, {}).size() == 2);  // the alarms; the newest telemetry is on the smashed page
  REQUIRE(s.damaged());
  const auto r = s.replace_damaged();
  CHECK(r.messages == 2);  // the alarms' rows are on the first pages
  CHECK(s.enqueue(lane::alarm, "t/alarm", "{}") > old_max);
}

TEST_CASE("store damage: the history's first page smashed - the rest of it is carried over") {
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  {
    store s(path);
    for (int i = 0; i < 3000; ++i) {
      const auto e = fire("e-" + std::to_string(i), s.next_event_seq());
      s.record_event(e, lane::alarm, "t/alarm", nlohmann::json{{"id", e.id}}.dump());
    }
  }
  const auto leaves = query(path, "SELECT COUNT(*) FROM dbstat WHERE name = 'events' AND pagetype = 'leaf'");
  REQUIRE(leaves > 10);
  smash(path, query(path, "SELECT MIN(pageno) FROM dbstat WHERE name = 'events' AND pagetype = 'leaf'"));
  store s(path);
  REQUIRE(s.moved_aside());
  const auto r = s.salvage();
  CHECK(r.event_stretches_lost == 1);
  // One page of rows lost, not the table: the rest is read past it.
  CHECK(static_cast<std::int64_t>(r.events) > 3000 - 3000 / leaves * 2);
  CHECK(r.events < 3000);
  CHECK(r.messages == 3000);
  CHECK(s.next_event_seq() == 3001);
}

TEST_CASE(
    "store damage: a medium that keeps failing - after three replacements in an hour, a database in memory") {
  test::temp_dir dir;
  const auto path = (dir / "fg.db").string();
  store s(path);
  fill(s);
  for (int i = 0; i < 3; ++i) {
    const auto r = s.replace_damaged();
    CHECK_FALSE(r.in_memory);
    CHECK(r.messages == 2);
  }
  std::size_t moved = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    moved += f.path().filename().string().find(".corrupt-") != std::string::npos &&
             !f.path().filename().string().ends_with("-wal") &&
             !f.path().filename().string().ends_with("-shm");
  }
  CHECK(moved == 3);
  const auto r = s.replace_damaged();
  CHECK(r.in_memory);
  CHECK(r.memory_reason.find("3 times within an hour") != std::string::npos);
  CHECK(s.in_memory());
  CHECK(r.messages == 2);  // read from the file where it is, into memory
  CHECK(s.pending(0, 10, {}).size() == 2);
  CHECK(std::filesystem::exists(path));  // left in place
}
