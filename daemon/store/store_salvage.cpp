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
/// A medium that keeps giving damaged pages gets a database in memory after this many replacements
/// in an hour, not more copies.
constexpr std::size_t max_replacements_per_hour = 3;

/// A connection to the moved-aside file, opened read-only: it stays as it was found.
class damaged_file {
 public:
  explicit damaged_file(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      error_ = db_ ? sqlite3_errmsg(db_) : "out of memory";
    }
  }
  ~damaged_file() { sqlite3_close_v2(db_); }
  damaged_file(const damaged_file&) = delete;
  damaged_file& operator=(const damaged_file&) = delete;
  /// The last error; `damage()`: whether it was a damaged page (any other error is not skipped).
  const std::string& error() const { return error_; }
  bool damage() const { return code_ == SQLITE_CORRUPT || code_ == SQLITE_NOTADB; }

  /// One query; `row` for each row; false (and the error kept) when a step fails.
  template <class F>
  bool query(const std::string& sql, std::initializer_list<std::int64_t> args, F&& row) {
    sqlite3_stmt* st = nullptr;
    code_ = SQLITE_OK;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      code_ = sqlite3_errcode(db_) & 0xFF;
      error_ = sqlite3_errmsg(db_);
      sqlite3_finalize(st);
      return false;
    }
    int i = 1;
    for (const auto a : args) sqlite3_bind_int64(st, i++, a);
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    if (rc != SQLITE_DONE) {
      code_ = rc & 0xFF;
      error_ = sqlite3_errmsg(db_);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
  }

  /// The rows of a table (rowid order, rowids from 1) that its pages still give: `select` is
  /// "SELECT rowid, … FROM t WHERE rowid > ?1 ORDER BY rowid LIMIT ?2". A damaged stretch is
  /// skipped: the first rowid past it from which a read works again is found by doubling, then
  /// halving, so that as few readable rows as possible are lost with it. Returns how many
  /// stretches were skipped; stops (false in `complete`) on an error that is not damage.
  template <class F>
  std::size_t scan(const std::string& select, F&& row, bool& complete) {
    std::size_t skipped = 0;
    std::int64_t after = 0;
    complete = true;
    const auto readable_from = [&](std::int64_t from) {
      return query(select, {from, 1}, [](sqlite3_stmt*) {});
    };
    for (;;) {
      std::size_t got = 0;
      const bool ok = query(select, {after, 512}, [&](sqlite3_stmt* st) {
        const auto id = sqlite3_column_int64(st, 0);
        if (id <= after) return;  // a stale page giving rows out of order
        ++got;
        after = id;
        row(st);
      });
      if (ok && got < 512) return skipped;
      if (ok) continue;
      if (!damage()) {
        complete = false;
        return skipped;
      }
      ++skipped;
      // The first `from` (> after) whose read works: doubling finds one, halving the earliest.
      std::int64_t bad = after, good = -1;
      for (std::int64_t step = 1;; step *= 2) {
        if (after > std::numeric_limits<std::int64_t>::max() - step) break;
        if (readable_from(after + step)) {
          good = after + step;
          break;
        }
        bad = after + step;
        if (step > std::numeric_limits<std::int64_t>::max() / 2) break;
      }
      if (good < 0) return skipped;
      while (good - bad > 1) {
        const auto mid = bad + (good - bad) / 2;
        (readable_from(mid) ? good : bad) = mid;
      }
      after = good;
    }
  }

 private:
  sqlite3* db_{nullptr};
  std::string error_;
  int code_{SQLITE_OK};
};

struct old_message {
  std::int64_t id;
  std::int64_t lane;
  std::string topic, payload;
  std::int64_t created_ms;
  std::int64_t delivered;  ///< the uplinks that had it already keep it
};

/// The payload marked as recovered when it is a JSON object: every event record is (and every
/// event message a firegated older than records queued).
std::string mark_recovered(const std::string& payload) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_object()) return payload;
  j["recovered"] = true;
  return j.dump();
}

/// Interrupts the connection's statements once `deadline` has passed (nullptr: no longer).
void within_budget(sqlite3* db, const std::chrono::steady_clock::time_point* deadline) {
  if (deadline == nullptr) return sqlite3_progress_handler(db, 0, nullptr, nullptr);
  sqlite3_progress_handler(
      db, 10000,
      [](void* d) -> int {
        return std::chrono::steady_clock::now() >
                       *static_cast<const std::chrono::steady_clock::time_point*>(d)
                   ? 1
                   : 0;
      },
      const_cast<std::chrono::steady_clock::time_point*>(deadline));
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
  if (!in.is_open() || in.bad()) {
    // Cannot be read (permissions, an I/O error): no sign of damage, and not to be moved aside.
    throw store_error(
        fmt::format("cannot read database path={} error=\"{}\" check=\"that firegate owns the file, "
                    "and dmesg for disk errors\"",
                    path_, std::strerror(errno)));
  }
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
  within_budget(db_, &deadline);
  std::string problems;
  try {
    problems = problems_of("PRAGMA quick_check");
  } catch (const store_error&) {
    within_budget(db_, nullptr);
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
  within_budget(db_, nullptr);
  if (!problems.empty()) throw damage(problems);
}

salvage_report store::salvage() {
  salvage_report r;
  if (!moved_aside_) return r;
  r.from = moved_aside_->moved_to;
  damaged_file old(r.from);
  // A file with no firegate tables left (empty, or its schema page gone) gives nothing.
  std::size_t tables = 0;
  if (!old.error().empty() ||
      !old.query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'outbox')",
                 {},
                 [&](sqlite3_stmt* st) { tables = static_cast<std::size_t>(sqlite3_column_int64(st, 0)); }) ||
      tables < 2) {
    r.error = !old.error().empty() ? old.error() : "it holds no firegate tables";
    r.outbox_complete = false;
    raise_outbox_ids(0);
    return r;
  }

  // The undelivered alarm and fault messages first (few): their ids from the lane index (its own
  // pages), then each row by its id, so that one damaged page costs only the rows on it, counted.
  std::vector<std::int64_t> ids;
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
      const std::size_t before = messages.size();
      if (!old.query(row_sql + " WHERE id = ?1", {id}, take) || messages.size() == before) {
        ++r.messages_unreadable;
      }
    }
    r.outbox_complete = r.messages_unreadable == 0;
  } else {
    // No list: every row the table still gives; complete only if no stretch was skipped.
    messages.clear();
    bool read_whole = true;
    r.outbox_complete =
        old.scan(row_sql + " WHERE id > ?1 ORDER BY id LIMIT ?2", take, read_whole) == 0 && read_whole;
  }

  // Into this (fresh) database, in one transaction (one sync): the messages, then the history,
  // streamed from the old file as it is read.
  std::set<std::string> queued_ids;
  const auto since = clock::now() - resend_window;
  exec("BEGIN");
  try {
    statement out(*this,
                  "INSERT OR IGNORE INTO outbox (id, lane, topic, payload, created_ms, delivered) "
                  "VALUES (?, ?, ?, ?, ?, ?)");
    for (const auto& m : messages) {
      out.bind(1, m.id).bind(2, m.lane).bind(3, m.topic).bind(4, mark_recovered(m.payload));
      out.bind(5, m.created_ms).bind(6, m.delivered);
      out.step();
      out.reset();
      r.messages += static_cast<std::size_t>(sqlite3_changes(db_));
      const auto j = nlohmann::json::parse(m.payload, nullptr, false);
      if (j.is_object() && j.contains("id") && j["id"].is_string())
        queued_ids.insert(j["id"].get<std::string>());
    }
    // New ids above every id the old file used and every id this store handed out.
    std::int64_t max_id = 0;
    for (const auto id : ids) max_id = std::max(max_id, id);
    for (const auto& m : messages) max_id = std::max(max_id, m.id);
    old.query("SELECT MAX(id) FROM outbox", {}, [&](sqlite3_stmt* st) {
      max_id = std::max<std::int64_t>(max_id, sqlite3_column_int64(st, 0));
    });
    raise_outbox_ids(max_id);

    statement ev(*this,
                 fmt::format("INSERT OR IGNORE INTO events ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                             "?, ?, ?)",
                             event_columns)
                     .c_str());
    bool history_whole = true;
    r.event_stretches_lost = old.scan(
        fmt::format("SELECT {} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", event_columns),
        [&](sqlite3_stmt* st) {
          // A kind this build does not know (a garbled row) is kept out: it would read as a fault.
          if (!parse_event_kind(column_text(st, 2))) return;
          const auto e = event_of_row(st);
          ev.bind(1, static_cast<std::int64_t>(e.seq)).bind(2, e.id).bind(3, std::string(to_string(e.kind)));
          ev.bind(4, e.device).bind(5, e.point).bind(6, e.value).bind(7, to_ms(e.time)).bind(8, e.alarm_id);
          ev.bind(9, e.detail).bind(10, e.rule).bind(11, e.actor).bind(12, e.verdict);
          ev.bind(13, std::int64_t{e.repeat}).bind(14, std::int64_t{e.test ? 1 : 0});
          if (e.until) ev.bind(15, to_ms(*e.until));
          ev.step();
          ev.reset();
          if (sqlite3_changes(db_) == 0) return;
          next_seq_ = std::max(next_seq_, e.seq + 1);
          ++r.events;
          // Whether it was delivered is unknown when the outbox could not be read whole.
          if (e.time >= since && !queued_ids.contains(e.id)) r.resend.push_back(e);
        },
        history_whole);
    if (!history_whole)
      r.error = fmt::format("the event history could not be read to its end ({})", old.error());
    exec("COMMIT");
  } catch (...) {
    rollback();
    throw;
  }
  if (r.outbox_complete) r.resend.clear();
  return r;
}

void store::raise_outbox_ids(std::int64_t above) {
  // An uplink may still hold an id of the old file in flight, and its acknowledgement must not mark
  // a new message delivered: a marker row above it, on no lane (3), and new rows numbered after
  // it. It is never read, counted or removed.
  statement floor(
      *this, "INSERT OR IGNORE INTO outbox (id, lane, topic, payload, created_ms) VALUES (?, 3, '', '', ?)");
  const auto at = std::max(above, highest_id_) + 1;
  floor.bind(1, at).bind(2, to_ms(clock::now()));
  floor.step();
  highest_id_ = std::max(highest_id_, at);  // new rows are numbered by the store above it
}

salvage_report store::replace_damaged() {
  damaged_ = false;  // met again if this fails: tried again after the next damaged operation
  if (lock_fd_ < 0) throw store_error("a database in memory cannot be moved aside");
  const auto reason = last_damage_.empty() ? std::string("a read or write met a damaged page") : last_damage_;
  const auto now = std::chrono::steady_clock::now();
  while (!replacements_.empty() && now - replacements_.front() > std::chrono::hours(1))
    replacements_.pop_front();
  sqlite3_close_v2(db_);
  db_ = nullptr;
  std::string why_memory;
  if (replacements_.size() >= max_replacements_per_hour) {
    // The medium keeps giving damaged pages: no more copies piling up on it.
    why_memory =
        fmt::format("the database was replaced {} times within an hour; the storage medium is failing",
                    replacements_.size());
  } else {
    replacements_.push_back(now);
    try {
      moved_aside_ = move_aside(path_, reason);
      open_database();
    } catch (const store_error& e) {
      why_memory = e.what();
      if (!moved_aside_ || moved_aside_->moved_to == path_ || std::filesystem::exists(path_)) {
        moved_aside_ = moved_aside_database{path_, reason};  // not moved: read where it is
      }
    }
  }
  if (db_ == nullptr) {
    // Never without a database: one in memory stands in until the next start, and what the
    // damaged file still gives is read into it all the same.
    if (why_memory.empty()) why_memory = "the fresh database could not be opened";
    if (!moved_aside_ || std::filesystem::exists(path_)) moved_aside_ = moved_aside_database{path_, reason};
    const auto real = path_;
    const auto fd = lock_fd_;
    path_ = ":memory:";
    lock_fd_ = -1;
    try {
      open_database();
    } catch (...) {
      path_ = real;
      lock_fd_ = fd;
      throw;
    }
    path_ = real;
    lock_fd_ = fd;
    in_memory_ = true;
  }
  set_bounds(bounds_);
  auto r = salvage();
  r.in_memory = in_memory_;
  r.memory_reason = why_memory;
  r.reason = reason;
  return r;
}

bool store::check_after_failure() {
  if (!check_due_ || db_ == nullptr) return damaged_;
  check_due_ = false;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_failure_check_ < std::chrono::minutes(1)) return damaged_;
  last_failure_check_ = now;
  // A write failed with an I/O error: the pages an alarm depends on are checked, within the budget.
  const auto deadline = now + integrity_budget;
  within_budget(db_, &deadline);
  for (const char* table : {"events", "outbox"}) {
    try {
      statement q(*this, fmt::format("PRAGMA quick_check({})", table).c_str());
      while (q.step()) {
        if (q.text(0) != "ok") {
          damaged_ = true;
          last_damage_ =
              fmt::format("database path={} is damaged: its {} table: {}", path_, table, q.text(0));
          break;
        }
      }
    } catch (const store_error&) {
      // Damage sets damaged_ on its own; an I/O error or the budget running out says nothing more.
    }
  }
  within_budget(db_, nullptr);
  return damaged_;
}

void store::check_outbox_readable() {
  for (unsigned u = 0; u < uplinks_; ++u) pending(u, 4, {});
  // pending() keeps the alarms going past damaged telemetry; here that damage is a failure.
  if (damaged_) throw store_corrupt(fmt::format("database path={} has damaged telemetry pages", path_));
}

}  // namespace firegate
