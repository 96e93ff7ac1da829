// The database's schema: numbered migrations applied at open, each in a transaction of its own
// (docs/storage.md, "Schema"). The rest of the store is store.cpp and its siblings.

#include "poll_codec.hpp"
#include "statement.hpp"
#include "store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <iterator>
#include <map>

namespace firegate {
namespace {

/// Numbered migrations: index i takes the schema from version i to i + 1. Never edit a shipped one;
/// append a new one.
constexpr const char* migrations[] = {
    // 1: readings, events, outbox.
    R"sql(
      CREATE TABLE readings (
        id      INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        device  TEXT NOT NULL,
        point   TEXT NOT NULL,
        value   REAL NOT NULL,
        quality INTEGER NOT NULL
      );
      CREATE TABLE events (
        seq      INTEGER PRIMARY KEY,
        id       TEXT NOT NULL UNIQUE,
        kind     TEXT NOT NULL,
        device   TEXT NOT NULL,
        point    TEXT NOT NULL,
        value    REAL NOT NULL,
        time_ms  INTEGER NOT NULL,
        alarm_id TEXT NOT NULL,
        detail   TEXT NOT NULL
      );
      CREATE TABLE outbox (
        id      INTEGER PRIMARY KEY,
        lane    INTEGER NOT NULL,
        topic   TEXT NOT NULL,
        payload TEXT NOT NULL
      );
      CREATE INDEX outbox_by_lane ON outbox (lane, id);
    )sql",
    // 2: compact readings. A reading names its series (device, point, unit) by a small integer
    // instead of repeating the names: 58 bytes a reading become about 22 (docs/storage.md). No
    // index: rows are appended in time order, so the rowid is the time index.
    R"sql(
      CREATE TABLE series (
        id     INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        point  TEXT NOT NULL,
        unit   TEXT NOT NULL,
        UNIQUE (device, point)
      );
      INSERT INTO series (device, point, unit) SELECT DISTINCT device, point, '' FROM readings;
      CREATE TABLE readings_v2 (
        time_ms INTEGER NOT NULL,
        series  INTEGER NOT NULL,
        value   REAL NOT NULL,
        quality INTEGER NOT NULL
      );
      INSERT INTO readings_v2 (time_ms, series, value, quality)
        SELECT r.time_ms, s.id, r.value, r.quality FROM readings r
        JOIN series s ON s.device = r.device AND s.point = r.point ORDER BY r.id;
      DROP TABLE readings;
      ALTER TABLE readings_v2 RENAME TO readings;
    )sql",
    // 3: delivery state per uplink (a bit each, the row goes when every uplink has it), the age of
    // an item, telemetry as a range of readings instead of a copy of them in JSON (a reading is
    // stored once: docs/storage.md), and eviction counters.
    R"sql(
      ALTER TABLE outbox ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE outbox ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE outbox ADD COLUMN first_reading INTEGER;
      ALTER TABLE outbox ADD COLUMN last_reading INTEGER;
      UPDATE outbox SET created_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
      CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    )sql",
    // 4: the rule that decided an event, and recoveries findable by the alarm they end, so that the
    // alarms still open are known at start (store::open_alarms).
    R"sql(
      ALTER TABLE events ADD COLUMN rule TEXT NOT NULL DEFAULT '';
      CREATE INDEX events_by_alarm ON events (alarm_id);
    )sql",
    // 5: the alarm lifecycle (issue 5): who acknowledged and their verdict, escalation counts, test
    // alarms, and when a shield or test mode ends, so that all of it is restored at start.
    R"sql(
      ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
      ALTER TABLE events ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
      ALTER TABLE events ADD COLUMN repeat INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE events ADD COLUMN test INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE events ADD COLUMN until_ms INTEGER;
    )sql",
    // 6: the platform's commands carried out, by their id, with the reply sent: a command is not
    // carried out twice (a replay, or the platform sending it again after a lost reply gets the
    // first reply again).
    R"sql(
      CREATE TABLE commands (
        id          TEXT PRIMARY KEY,
        time_ms     INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        reply       TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX commands_by_time ON commands (time_ms);
    )sql",
    // 7: an alarm or fault row's payload is the event's record (domain/event_record.hpp), no longer
    // the platform's message. Nothing to change in the file: rows queued before are read as they
    // are (uplink/stored_event.cpp). The version says it, so that an older firegated, which would
    // send a record to the platform as it is, refuses the file instead of taking it.
    R"sql(
      SELECT 1;
    )sql",
    // 8: a row a poll instead of a row a reading (issue 23: about 4 bytes a reading on disk instead
    // of 25, one insert a poll). A layout names the series of a poll's values in order, once; a
    // poll row has its time, its layout and its values packed (poll_codec). The rows of `readings`
    // are packed by store::pack_readings_into_polls, which also moves telemetry's ranges from
    // reading rowids to poll rowids (first_poll, last_poll) and drops the old table.
    R"sql(
      CREATE TABLE layouts (
        id     INTEGER PRIMARY KEY,
        series TEXT NOT NULL UNIQUE
      );
      CREATE TABLE polls (
        time_ms INTEGER NOT NULL,
        layout  INTEGER NOT NULL,
        data    BLOB NOT NULL
      );
    )sql",
    // 9: report strategies (issue 23): which of a poll's values go to the platform as telemetry. NULL:
    // all of them (every poll before this version was); else bit i for value i (bit 63 for the
    // 64th value on). Every value is stored either way.
    R"sql(
      ALTER TABLE polls ADD COLUMN report INTEGER;
    )sql",
};

}  // namespace

void store::pack_readings_into_polls() {
  load_names();  // the series, to know each reading's device
  // Telemetry's ranges of reading rowids, to move to the polls that hold them: a first reading
  // goes to the first poll holding it or a later one, a last reading to the last poll holding it
  // or an earlier one (rows evicted in between are simply not there).
  std::vector<std::int64_t> firsts, lasts;
  {
    statement t(*this, "SELECT first_reading, last_reading FROM outbox WHERE first_reading IS NOT NULL");
    while (t.step()) {
      firsts.push_back(t.int64(0));
      lasts.push_back(t.int64(1));
    }
  }
  std::sort(firsts.begin(), firsts.end());
  firsts.erase(std::unique(firsts.begin(), firsts.end()), firsts.end());
  std::sort(lasts.begin(), lasts.end());
  lasts.erase(std::unique(lasts.begin(), lasts.end()), lasts.end());
  std::map<std::int64_t, std::int64_t> first_to, last_to;
  std::size_t next_first = 0, next_last = 0;
  std::int64_t previous_poll = 0;

  statement insert(*this, "INSERT INTO polls (time_ms, layout, data) VALUES (?, ?, ?)");
  std::vector<std::int64_t> series;
  std::string data;
  std::int64_t time_ms = 0, low = 0, high = 0;
  std::uint32_t device = 0;
  const auto write_poll = [&] {
    if (series.empty()) return;
    insert.bind(1, time_ms).bind(2, layout_of(series)).bind_blob(3, data);
    insert.step();
    insert.reset();
    const auto poll = sqlite3_last_insert_rowid(db_);
    while (next_first < firsts.size() && firsts[next_first] <= high) first_to[firsts[next_first++]] = poll;
    while (next_last < lasts.size() && lasts[next_last] < low) last_to[lasts[next_last++]] = previous_poll;
    previous_poll = poll;
    series.clear();
    data.clear();
  };
  // A chunk of readings at a time, deleted once packed: their pages take the next chunk's polls, so
  // the file does not grow. Every page of the old table passes through the WAL once (deleted or
  // dropped alike), so the migration needs free space about the file's size until it ends.
  statement rows(*this,
                 "SELECT rowid, time_ms, series, value, quality FROM readings WHERE rowid > ? ORDER BY rowid "
                 "LIMIT 100000");
  statement packed(*this, "DELETE FROM readings WHERE rowid <= ?");
  std::int64_t highest = 0;
  {
    statement top(*this, "SELECT IFNULL(MAX(rowid), 0) FROM readings");
    top.step();
    highest = top.int64(0);
  }
  auto told = std::chrono::steady_clock::now();
  for (std::int64_t after = 0;;) {
    if (progress_ && std::chrono::steady_clock::now() - told > std::chrono::seconds(2)) {
      progress_(fmt::format("packing readings into polls (schema 8): row {} of {}", after, highest));
      told = std::chrono::steady_clock::now();
    }
    rows.bind(1, after);
    std::int64_t read = 0;
    while (rows.step()) {
      ++read;
      after = rows.int64(0);
      const auto name = names_.find(rows.int64(2));
      if (name == names_.end()) continue;  // a series lost to damage: its readings cannot be named
      const auto t = rows.int64(1);
      // A poll: a run of readings of one device with one time, as they were appended.
      if (series.empty() || t != time_ms || name->second.device != device ||
          std::find(series.begin(), series.end(), name->first) != series.end()) {
        write_poll();
        time_ms = t;
        device = name->second.device;
        low = rows.int64(0);
      }
      high = rows.int64(0);
      series.push_back(name->first);
      poll_codec::append(data, rows.real(3), rows.int64(4) == 0 ? quality::good : quality::bad);
    }
    rows.reset();
    if (read == 0) break;
    packed.bind(1, after);
    packed.step();
    packed.reset();
  }
  write_poll();
  const auto past_the_end = previous_poll + 1;
  for (; next_first < firsts.size(); ++next_first) first_to[firsts[next_first]] = past_the_end;
  for (; next_last < lasts.size(); ++next_last) last_to[lasts[next_last]] = previous_poll;
  exec("ALTER TABLE outbox ADD COLUMN first_poll INTEGER");
  exec("ALTER TABLE outbox ADD COLUMN last_poll INTEGER");
  {
    statement moved(*this, "UPDATE outbox SET first_poll = ?, last_poll = ? WHERE id = ?");
    statement ranges(*this,
                     "SELECT id, first_reading, last_reading FROM outbox WHERE first_reading IS NOT NULL");
    std::vector<std::array<std::int64_t, 3>> all;
    while (ranges.step()) all.push_back({ranges.int64(0), ranges.int64(1), ranges.int64(2)});
    for (const auto& [id, first, last] : all) {
      moved.bind(1, first_to[first]).bind(2, last_to[last]).bind(3, id);
      moved.step();
      moved.reset();
    }
  }
  // A telemetry item whose readings are all gone has nothing left to send.
  exec("DELETE FROM outbox WHERE first_reading IS NOT NULL AND first_poll > last_poll");
  exec("ALTER TABLE outbox DROP COLUMN first_reading");
  exec("ALTER TABLE outbox DROP COLUMN last_reading");
  exec("DROP TABLE readings");
  layouts_added_.clear();
}

int store::schema_version() {
  return static_cast<int>(std::size(migrations));
}

void store::migrate() {
  const int current = user_version();
  if (current > schema_version()) {
    throw store_error(
        fmt::format("database path={} has schema version {} but this firegate knows only up to {}; "
                    "install the newer firegate or move the file aside",
                    path_, current, schema_version()));
  }
  for (int v = current; v < schema_version(); ++v) {
    exec("BEGIN IMMEDIATE");
    try {
      exec(migrations[v]);
      if (v + 1 == 8) pack_readings_into_polls();
      exec(fmt::format("PRAGMA user_version={}", v + 1).c_str());
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
  // Packing the readings (schema 8) passed the whole old table through the WAL: give that space
  // back now rather than keep a WAL the size of the database beside it. The migration has
  // committed; a checkpoint that fails now is retried by SQLite later and changes nothing.
  if (current > 0 && current < 8)
    sqlite3_exec(db_, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
}

}  // namespace firegate
