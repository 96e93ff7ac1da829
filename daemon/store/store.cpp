#include "store.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

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
};

std::int64_t to_ms(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

/// A prepared statement that finalises itself.
class store::statement {
 public:
  statement(store& s, const char* sql) : store_(s) {
    if (sqlite3_prepare_v2(s.db_, sql, -1, &stmt_, nullptr) != SQLITE_OK) s.fail("prepare");
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  /// true while there is a row.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) store_.fail("step");
    return false;
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::int64_t int64(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }

 private:
  statement& check(int rc) {
    if (rc != SQLITE_OK) store_.fail("bind");
    return *this;
  }
  store& store_;
  sqlite3_stmt* stmt_{nullptr};
};

namespace {

/// One firegated per database: an exclusive flock on "<path>.lock" (held until the store closes,
/// released by the kernel if the process dies), with the holder's pid in the file for the message.
/// Renames an unreadable database and its WAL files to "<path>.corrupt-<UTC time>", keeping them
/// for inspection, so that a fresh database can take the path.
moved_aside_database move_aside(const std::string& path, std::string reason) {
  const auto now = std::chrono::system_clock::now();
  auto target = fmt::format("{}.corrupt-{:%Y%m%dT%H%M%S}Z", path,
                            fmt::gmtime(std::chrono::system_clock::to_time_t(now)));
  for (int n = 2; std::filesystem::exists(target); ++n) target = fmt::format("{}.corrupt-{}", path, n);
  std::error_code ec;
  std::filesystem::rename(path, target, ec);
  if (ec) {
    throw store_error(
        fmt::format("database path={} is unreadable ({}) and could not be moved aside: {}; "
                    "move or delete it by hand",
                    path, reason, ec.message()));
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    if (std::filesystem::exists(path + suffix)) std::filesystem::rename(path + suffix, target + suffix, ec);
  }
  return {target, std::move(reason)};
}

int lock_database(const std::string& path) {
  const auto lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    throw store_error(
        fmt::format("cannot create lock file path={} error=\"{}\" check=\"the directory exists "
                    "and firegate may write to it (storage.path)\"",
                    lock_path, std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32]{};
    const auto n = ::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : std::string("?");
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    throw store_error(
        fmt::format("database path={} is in use by another firegated (pid {}); stop it first "
                    "(systemctl stop firegated), or give this one its own storage.path",
                    path, holder));
  }
  const auto text = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) < 0) {
    // The lock holds without the pid; the message of a second instance just cannot name us.
  }
  return fd;
}

}  // namespace

store::store(const std::string& path) : path_(path), lock_fd_(lock_database(path)) {
  try {
    try {
      open_database();
    } catch (const store_corrupt& e) {
      moved_aside_ = move_aside(path_, e.what());
      open_database();
    }
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

void store::open_database() {
  series_.clear();
  next_seq_ = 1;
  // NOMUTEX: one thread uses the connection (the store is not thread-safe by contract).
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw store_error(
        fmt::format("cannot open database path={} error=\"{}\" check=\"the directory exists and "
                    "firegate may write to it (storage.path)\"",
                    path_, why));
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec("PRAGMA journal_mode=WAL");
    // FULL: every commit (an event above all) is on disk before the uplink may see it.
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
    // The store appends and reads the outbox's head: 512 KiB of page cache is plenty, and the
    // default 2 MiB is a tenth of the daemon's memory budget (docs/performance.md).
    exec("PRAGMA cache_size=-512");
    migrate();
    statement s(*this, "SELECT COALESCE(MAX(seq), 0) FROM events");
    s.step();
    next_seq_ = static_cast<std::uint64_t>(s.int64(0)) + 1;
    statement all(*this, "SELECT id, device, point FROM series");
    while (all.step()) series_[all.text(1)][all.text(2)] = all.int64(0);
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

store::~store() {
  if (db_ != nullptr) sqlite3_close(db_);
  ::close(lock_fd_);  // releases the lock
}

void store::fail(const char* what) {
  throw_error(
      fmt::format("database error path={} op={} error=\"{}\" check=\"disk space and file "
                  "permissions\"",
                  path_, what, sqlite3_errmsg(db_)));
}

void store::throw_error(std::string message) {
  const int code = sqlite3_errcode(db_) & 0xFF;
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) throw store_corrupt(std::move(message));
  throw store_error(std::move(message));
}

void store::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string why = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    throw_error(
        fmt::format("database error path={} error=\"{}\" check=\"the file is a firegate database "
                    "and the disk is writable\"",
                    path_, why));
  }
}

int store::schema_version() {
  return static_cast<int>(std::size(migrations));
}

int store::user_version() {
  statement s(*this, "PRAGMA user_version");
  s.step();
  return static_cast<int>(s.int64(0));
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

std::int64_t store::series_of(const reading& r) {
  auto& points = series_[r.device];
  if (auto it = points.find(r.point); it != points.end()) return it->second;
  statement add(*this, "INSERT INTO series (device, point, unit) VALUES (?, ?, ?)");
  add.bind(1, r.device).bind(2, r.point).bind(3, r.unit);
  add.step();
  const auto id = sqlite3_last_insert_rowid(db_);
  points.emplace(r.point, id);
  return id;
}

void store::insert_readings(std::span<const reading> readings) {
  statement s(*this, "INSERT INTO readings (time_ms, series, value, quality) VALUES (?, ?, ?, ?)");
  for (const auto& r : readings) {
    s.bind(1, to_ms(r.time))
        .bind(2, series_of(r))
        .bind(3, r.value)
        .bind(4, std::int64_t{static_cast<int>(r.q)});
    s.step();
    s.reset();
  }
}

void store::append_readings(std::span<const reading> readings) {
  append_telemetry(readings, {}, {});
}

void store::append_telemetry(std::span<const reading> readings, const std::string& topic,
                             std::span<const std::string> payloads) {
  if (readings.empty() && payloads.empty()) return;
  exec("BEGIN");
  try {
    insert_readings(readings);
    if (!payloads.empty()) {
      statement out(*this, "INSERT INTO outbox (lane, topic, payload) VALUES (?, ?, ?)");
      for (const auto& payload : payloads) {
        out.bind(1, std::int64_t{static_cast<int>(lane::telemetry)}).bind(2, topic).bind(3, payload);
        out.step();
        out.reset();
      }
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::uint64_t store::next_event_seq() {
  return next_seq_++;
}

void store::record_event(const event& e, lane l, const std::string& topic, const std::string& payload) {
  exec("BEGIN");
  try {
    statement ev(*this,
                 "INSERT INTO events (seq, id, kind, device, point, value, time_ms, alarm_id, detail) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ev.bind(1, static_cast<std::int64_t>(e.seq)).bind(2, e.id).bind(3, std::string(to_string(e.kind)));
    ev.bind(4, e.device)
        .bind(5, e.point)
        .bind(6, e.value)
        .bind(7, to_ms(e.time))
        .bind(8, e.alarm_id)
        .bind(9, e.detail);
    ev.step();
    statement out(*this, "INSERT INTO outbox (lane, topic, payload) VALUES (?, ?, ?)");
    out.bind(1, std::int64_t{static_cast<int>(l)}).bind(2, topic).bind(3, payload);
    out.step();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void store::enqueue(lane l, const std::string& topic, const std::string& payload) {
  statement out(*this, "INSERT INTO outbox (lane, topic, payload) VALUES (?, ?, ?)");
  out.bind(1, std::int64_t{static_cast<int>(l)}).bind(2, topic).bind(3, payload);
  out.step();
}

std::vector<outbox_item> store::pending(std::size_t limit, const std::set<std::int64_t>& exclude) {
  std::vector<outbox_item> items;
  statement s(*this, "SELECT id, lane, topic, payload FROM outbox ORDER BY lane, id LIMIT ?");
  s.bind(1, static_cast<std::int64_t>(limit + exclude.size()));
  while (items.size() < limit && s.step()) {
    const auto id = s.int64(0);
    if (exclude.contains(id)) continue;
    items.push_back({id, static_cast<lane>(s.int64(1)), s.text(2), s.text(3)});
  }
  return items;
}

void store::mark_delivered(std::int64_t id) {
  statement s(*this, "DELETE FROM outbox WHERE id = ?");
  s.bind(1, id);
  s.step();
}

std::size_t store::outbox_depth() {
  statement s(*this, "SELECT COUNT(*) FROM outbox");
  s.step();
  return static_cast<std::size_t>(s.int64(0));
}

std::size_t store::event_count() {
  statement s(*this, "SELECT COUNT(*) FROM events");
  s.step();
  return static_cast<std::size_t>(s.int64(0));
}

std::size_t store::reading_count() {
  statement s(*this, "SELECT COUNT(*) FROM readings");
  s.step();
  return static_cast<std::size_t>(s.int64(0));
}

}  // namespace firegate
