// The database's schema: numbered migrations applied at open, each in a transaction of its own
// (docs/storage.md, "Schema"). The rest of the store is store.cpp and its siblings.

#include "statement.hpp"
#include "store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <iterator>

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
};

}  // namespace

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
      exec(fmt::format("PRAGMA user_version={}", v + 1).c_str());
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
}

}  // namespace firegate
