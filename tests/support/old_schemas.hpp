#pragma once
// Databases as older firegated versions left them, written by hand so that a migration test's file
// does not come from the store it tests, and the one call that writes them.

#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <string>

namespace firegate::test {

/// Runs SQL on a database file the test writes by hand; fails the test with SQLite's message.
inline void sql(sqlite3* db, const std::string& text) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &error);
  INFO(text << "\n" << (error ? error : ""));
  sqlite3_free(error);
  REQUIRE(rc == SQLITE_OK);
}

/// The tables as schema 6 and 7 had them (migrations 1-6 of daemon/store/store_schema.cpp applied:
/// the same columns in the same order; 7 changed nothing in the file). No user_version set.
inline constexpr const char* schema_6_tables = R"sql(
  CREATE TABLE series (id INTEGER PRIMARY KEY, device TEXT NOT NULL, point TEXT NOT NULL,
    unit TEXT NOT NULL, UNIQUE (device, point));
  CREATE TABLE readings (time_ms INTEGER NOT NULL, series INTEGER NOT NULL, value REAL NOT NULL,
    quality INTEGER NOT NULL);
  CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    device TEXT NOT NULL, point TEXT NOT NULL, value REAL NOT NULL, time_ms INTEGER NOT NULL,
    alarm_id TEXT NOT NULL, detail TEXT NOT NULL, rule TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '', verdict TEXT NOT NULL DEFAULT '', repeat INTEGER NOT NULL DEFAULT 0,
    test INTEGER NOT NULL DEFAULT 0, until_ms INTEGER);
  CREATE INDEX events_by_alarm ON events (alarm_id);
  CREATE TABLE outbox (id INTEGER PRIMARY KEY, lane INTEGER NOT NULL, topic TEXT NOT NULL,
    payload TEXT NOT NULL, delivered INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL DEFAULT 0,
    first_reading INTEGER, last_reading INTEGER);
  CREATE INDEX outbox_by_lane ON outbox (lane, id);
  CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE commands (id TEXT PRIMARY KEY, time_ms INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    reply TEXT NOT NULL) WITHOUT ROWID;
  CREATE INDEX commands_by_time ON commands (time_ms);
)sql";

}  // namespace firegate::test
