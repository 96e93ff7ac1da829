// A damaged database: found at open (a header that is not SQLite's, an empty file, or pages that
// PRAGMA quick_check rejects) or met while running (SQLITE_CORRUPT). The file is moved aside and
// kept; a fresh one takes its place; and what can still be read of the old one is carried over:
// the event history with the alarms still open, and above all the alarm and fault messages not
// yet delivered, which go out again marked as recovered (docs/storage.md, "A damaged database").

#include "statement.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <utility>

namespace firegate {
namespace {

/// The whole-file check stops after this long: on a large file on an SD card it could take a
/// minute, and the gateway must start. The tables an alarm depends on are always checked whole.
constexpr auto integrity_budget = std::chrono::seconds(5);
/// When the list of undelivered messages cannot be read, the events of this last stretch of time
/// go out again (the platform de-duplicates on the event id).
constexpr auto resend_window = std::chrono::hours(24);

/// A connection to the moved-aside file, opened read-only: it stays as it was found.
class damaged_file {
 public:
  explicit damaged_file(const std::string& path) {
    const auto uri = "file:" + path + "?mode=ro";
    if (sqlite3_open_v2(uri.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      error_ = db_ ? sqlite3_errmsg(db_) : "out of memory";
    }
  }
  ~damaged_file() { sqlite3_close(db_); }
  damaged_file(const damaged_file&) = delete;
  damaged_file& operator=(const damaged_file&) = delete;
  const std::string& error() const { return error_; }

  /// One query; `row` for each row; false (and the error kept) when a step fails.
  template <class F>
  bool query(const std::string& sql, std::initializer_list<std::int64_t> args, F&& row) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      error_ = sqlite3_errmsg(db_);
      sqlite3_finalize(st);
      return false;
    }
    int i = 1;
    for (const auto a : args) sqlite3_bind_int64(st, i++, a);
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    if (rc != SQLITE_DONE) error_ = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
  }

  /// The rows of `table` (rowid order) that its pages still give: `select` is "SELECT rowid, …
  /// FROM t WHERE rowid > ?1 ORDER BY rowid LIMIT ?2". A damaged stretch is jumped over by growing
  /// steps; returns how many stretches were skipped.
  template <class F>
  std::size_t scan(const std::string& select, F&& row) {
    std::size_t skipped = 0;
    std::int64_t after = std::numeric_limits<std::int64_t>::min();
    for (;;) {
      std::size_t got = 0;
      const bool ok = query(select, {after, 512}, [&](sqlite3_stmt* st) {
        ++got;
        after = sqlite3_column_int64(st, 0);
        row(st);
      });
      if (ok && got < 512) return skipped;
      if (ok) continue;
      // Damaged just past `after`: look further on until a read works again.
      ++skipped;
      bool resumed = false;
      for (std::int64_t step = 1; step > 0 && step < (std::int64_t{1} << 40); step *= 4) {
        const auto from = after > std::numeric_limits<std::int64_t>::max() - step ? after : after + step;
        if (from == after) break;
        if (query(select, {from, 1}, [](sqlite3_stmt*) {})) {
          after = from;
          resumed = true;
          break;
        }
      }
      if (!resumed) return skipped;
    }
  }

 private:
  sqlite3* db_{nullptr};
  std::string error_;
};

struct old_message {
  std::int64_t id;
  std::int64_t lane;
  std::string topic, payload;
  std::int64_t created_ms;
  std::int64_t delivered;  ///< the uplinks that had it already keep it
};

/// The payload marked as recovered when it is a JSON object (every event message is).
std::string mark_recovered(const std::string& payload) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_object()) return payload;
  j["recovered"] = true;
  return j.dump();
}

bool sqlite3_is_interrupted_text(const char* message) {
  return message != nullptr && std::strstr(message, "interrupt") != nullptr;
}

}  // namespace

void store::check_header() {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path_, ec);
  if (ec) return;  // not there yet: a new database
  if (size == 0) {
    throw store_corrupt(fmt::format(
        "database path={} is empty (0 bytes): a database that held data was truncated, or a first start "
        "was cut off",
        path_));
  }
  std::array<char, 16> head{};
  std::ifstream in(path_, std::ios::binary);
  in.read(head.data(), head.size());
  if (in.gcount() < static_cast<std::streamsize>(head.size()) ||
      std::memcmp(head.data(), "SQLite format 3", 16) != 0) {
    throw store_corrupt(
        fmt::format("database path={} is not a database: it does not start with SQLite's header ({} bytes); "
                    "another file was put there, or its first page is damaged",
                    path_, size));
  }
}

void store::check_integrity() {
  // What quick_check reports (at most three lines); a step that fails throws as usual.
  const auto problems_of = [&](const std::string& sql) {
    std::string text;
    statement s(*this, sql.c_str());
    for (int n = 0; s.step();) {
      auto line = s.text(0);
      if (line != "ok" && n++ < 3) text += (text.empty() ? "" : "; ") + line;
    }
    return text;
  };
  const auto damage = [&](const std::string& what) {
    damaged_ = true;
    return store_corrupt(fmt::format("database path={} is damaged: {}", path_, what));
  };
  std::set<std::string> tables;
  {
    statement t(*this, "SELECT name FROM sqlite_master WHERE type = 'table'");
    while (t.step()) tables.insert(t.text(0));
  }
  for (const char* name : {"events", "outbox", "series", "counters"}) {
    if (!tables.contains(name)) continue;
    std::string problems;
    try {
      problems = problems_of(fmt::format("PRAGMA quick_check({})", name));
    } catch (const store_error&) {
      if (!damaged_) throw;  // not damage (an I/O error): the caller's store_error
      // The check itself could not walk the table: that is the damage.
      throw damage(fmt::format("its {} table cannot be read ({})", name, sqlite3_errmsg(db_)));
    }
    if (!problems.empty()) throw damage(fmt::format("its {} table: {}", name, problems));
  }
  // The whole file, readings included, as far as the budget allows.
  const auto deadline = std::chrono::steady_clock::now() + integrity_budget;
  sqlite3_progress_handler(
      db_, 10000,
      [](void* d) -> int {
        return std::chrono::steady_clock::now() > *static_cast<std::chrono::steady_clock::time_point*>(d) ? 1
                                                                                                          : 0;
      },
      const_cast<std::chrono::steady_clock::time_point*>(&deadline));
  std::string problems;
  try {
    problems = problems_of("PRAGMA quick_check");
  } catch (const store_error&) {
    sqlite3_progress_handler(db_, 0, nullptr, nullptr);
    if (damaged_) throw damage(fmt::format("the file cannot be checked ({})", sqlite3_errmsg(db_)));
    if ((sqlite3_errcode(db_) & 0xFF) != SQLITE_INTERRUPT &&
        !sqlite3_is_interrupted_text(sqlite3_errmsg(db_))) {
      throw;  // not damage (an I/O error): the caller's store_error
    }
    integrity_note_ = fmt::format(
        "the whole-file check stopped after {} s (a large file); the events and the outbox were checked "
        "whole, "
        "the readings are checked as they are read",
        integrity_budget.count());
    return;
  }
  sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  if (!problems.empty()) throw damage(problems);
}

salvage_report store::salvage() {
  salvage_report r;
  if (!moved_aside_) return r;
  r.from = moved_aside_->moved_to;
  damaged_file old(r.from);
  if (!old.error().empty()) {
    r.error = old.error();
    r.outbox_complete = false;
    raise_outbox_ids(std::int64_t{1} << 40);
    return r;
  }

  // A file with no firegate tables left (empty, or its schema page gone) gives nothing.
  std::size_t tables = 0;
  if (!old.query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'outbox')",
                 {},
                 [&](sqlite3_stmt* st) { tables = static_cast<std::size_t>(sqlite3_column_int64(st, 0)); }) ||
      tables < 2) {
    r.error = old.error().empty() ? "it holds no firegate tables" : old.error();
    r.outbox_complete = false;
    // The ids the old file used are unknown: new ones start far above any it could have reached.
    raise_outbox_ids(std::int64_t{1} << 40);
    return r;
  }

  // Every event row still readable, by seq.
  std::vector<event> events;
  r.event_stretches_lost =
      old.scan(fmt::format("SELECT {} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", event_columns),
               [&](sqlite3_stmt* st) { events.push_back(event_of_row(st)); });

  // The undelivered alarm and fault messages: their ids from the lane index (its own pages), then
  // each row by its id, so that one damaged page costs only the rows on it, counted.
  std::vector<std::int64_t> ids;
  std::int64_t max_id = 0;
  bool listed = true;
  for (const std::int64_t l : {0, 1}) {
    listed = listed && old.query("SELECT id FROM outbox INDEXED BY outbox_by_lane WHERE lane = ?1", {l},
                                 [&](sqlite3_stmt* st) { ids.push_back(sqlite3_column_int64(st, 0)); });
  }
  std::vector<old_message> messages;
  const auto take = [&](sqlite3_stmt* st) {
    const auto lane = sqlite3_column_int64(st, 1);
    if (lane == 0 || lane == 1) {
      messages.push_back({sqlite3_column_int64(st, 0), lane, column_text(st, 2), column_text(st, 3),
                          sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5)});
    }
  };
  const std::string row_sql = "SELECT id, lane, topic, payload, created_ms, delivered FROM outbox";
  if (listed) {
    for (const auto id : ids) {
      std::size_t before = messages.size();
      if (!old.query(row_sql + " WHERE id = ?1", {id}, take) || messages.size() == before) {
        ++r.messages_unreadable;
      }
    }
  } else {
    // No list: every row the table still gives, its lost stretches unknown.
    messages.clear();
    old.scan(row_sql + " WHERE id > ?1 ORDER BY id LIMIT ?2", take);
  }
  r.outbox_complete = listed && r.messages_unreadable == 0;
  for (const auto id : ids) max_id = std::max(max_id, id);
  for (const auto& m : messages) max_id = std::max(max_id, m.id);
  old.query("SELECT MAX(id) FROM outbox", {},
            [&](sqlite3_stmt* st) { max_id = std::max<std::int64_t>(max_id, sqlite3_column_int64(st, 0)); });

  // Into this (fresh) database, in one transaction.
  std::set<std::string> queued_ids;
  exec("BEGIN");
  try {
    {
      statement ev(*this,
                   fmt::format("INSERT OR IGNORE INTO events ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                               "?, ?, ?, ?, ?)",
                               event_columns)
                       .c_str());
      for (const auto& e : events) {
        ev.bind(1, static_cast<std::int64_t>(e.seq)).bind(2, e.id).bind(3, std::string(to_string(e.kind)));
        ev.bind(4, e.device).bind(5, e.point).bind(6, e.value).bind(7, to_ms(e.time)).bind(8, e.alarm_id);
        ev.bind(9, e.detail).bind(10, e.rule).bind(11, e.actor).bind(12, e.verdict);
        ev.bind(13, std::int64_t{e.repeat}).bind(14, std::int64_t{e.test ? 1 : 0});
        if (e.until) ev.bind(15, to_ms(*e.until));
        ev.step();
        ev.reset();
        next_seq_ = std::max(next_seq_, e.seq + 1);
        ++r.events;
      }
    }
    statement out(*this,
                  "INSERT OR IGNORE INTO outbox (id, lane, topic, payload, created_ms, delivered) "
                  "VALUES (?, ?, ?, ?, ?, ?)");
    for (const auto& m : messages) {
      out.bind(1, m.id)
          .bind(2, m.lane)
          .bind(3, m.topic)
          .bind(4, mark_recovered(m.payload))
          .bind(5, m.created_ms);
      out.bind(6, m.delivered);
      out.step();
      out.reset();
      ++r.messages;
      const auto j = nlohmann::json::parse(m.payload, nullptr, false);
      if (j.is_object() && j.contains("id") && j["id"].is_string())
        queued_ids.insert(j["id"].get<std::string>());
    }
    exec("COMMIT");
  } catch (...) {
    rollback();
    throw;
  }
  raise_outbox_ids(max_id);
  if (!r.outbox_complete) {
    // Whether the rest was delivered is unknown: the recent events not already queued go again.
    const auto since = clock::now() - resend_window;
    for (const auto& e : events) {
      if (e.time >= since && !queued_ids.contains(e.id)) r.resend.push_back(e);
    }
  }
  return r;
}

void store::raise_outbox_ids(std::int64_t above) {
  // An uplink may still hold an id of the old file in flight, and its acknowledgement must not mark
  // a new message delivered: a marker row at `above`, on no lane (3), makes SQLite number new rows
  // after it. It is never read, counted or removed.
  statement floor(
      *this, "INSERT OR IGNORE INTO outbox (id, lane, topic, payload, created_ms) VALUES (?, 3, '', '', ?)");
  floor.bind(1, above + 1).bind(2, to_ms(clock::now()));
  floor.step();
}

salvage_report store::replace_damaged(const std::string& reason) {
  damaged_ = false;  // met again if this fails: tried again after the next damaged operation
  if (lock_fd_ < 0) throw store_error("a database in memory cannot be moved aside");
  sqlite3_close(db_);
  db_ = nullptr;
  try {
    moved_aside_ = move_aside(path_, reason);
    open_database();
  } catch (...) {
    // Never left without a database: one in memory stands in until the next start.
    if (db_ == nullptr) {
      const auto real = std::exchange(path_, ":memory:");
      const auto fd = std::exchange(lock_fd_, -1);
      open_database();
      path_ = real;
      lock_fd_ = fd;
    }
    set_bounds(bounds_);
    throw;
  }
  set_bounds(bounds_);
  return salvage();
}

void store::check_outbox_readable() {
  for (unsigned u = 0; u < uplinks_; ++u) pending(u, 4, {});
  // pending() keeps the alarms going past damaged telemetry; here that damage is a failure.
  if (damaged_) throw store_corrupt(fmt::format("database path={} has damaged telemetry pages", path_));
}

}  // namespace firegate
