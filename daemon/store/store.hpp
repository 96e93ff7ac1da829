#pragma once
// The gateway's durable store: readings, events and the uplink outbox in one SQLite file (WAL).
// The only code in firegate that includes sqlite3.h. Every event is committed with a full sync
// before an uplink can see it; an outbox item leaves only when the uplink reports it delivered.

#include "reading.hpp"
#include "rules/event.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace firegate {

/// A store failure: names the file and what to check.
class store_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The file is not a SQLite database, or its content is damaged (SQLITE_NOTADB, SQLITE_CORRUPT).
class store_corrupt : public store_error {
 public:
  using store_error::store_error;
};

/// A database found unreadable at start and moved aside for a fresh one.
struct moved_aside_database {
  std::string moved_to;  ///< "<path>.corrupt-20261124T115500Z"
  std::string reason;    ///< what SQLite said
};

/// Delivery lanes, in the order they go out: an alarm never waits behind faults or telemetry.
enum class lane : std::uint8_t { alarm = 0, fault = 1, telemetry = 2 };

struct outbox_item {
  std::int64_t id{0};
  firegate::lane lane{lane::telemetry};
  std::string topic;
  std::string payload;
};

/// Thread safety: none; owned by the application and used on its loop.
class store {
 public:
  /// Opens (creating if needed) and migrates the database. A file that is not a database or is
  /// damaged is moved aside (with its -wal and -shm) and a fresh one started: see moved_aside().
  /// Throws store_error for what cannot be helped here (no directory, no permission, a database in
  /// use by another firegated, a newer schema).
  explicit store(const std::string& path);
  /// Set when the database found at start was unreadable and moved aside.
  const std::optional<moved_aside_database>& moved_aside() const { return moved_aside_; }
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// The schema version this build migrates to.
  static int schema_version();
  int user_version();

  /// One transaction for these readings.
  void append_readings(std::span<const reading> readings);
  /// Readings and the telemetry messages made of them (outbox lane telemetry, on `topic`), in one
  /// transaction: a batch is stored and queued together or not at all.
  void append_telemetry(std::span<const reading> readings, const std::string& topic,
                        std::span<const std::string> payloads);
  /// The next per-gateway event sequence number (monotonic across restarts).
  std::uint64_t next_event_seq();
  /// Stores the event and its outbox item in one fully synced transaction.
  void record_event(const event& e, lane l, const std::string& topic, const std::string& payload);
  /// Queues a message with no event behind it (telemetry).
  void enqueue(lane l, const std::string& topic, const std::string& payload);
  /// Up to `limit` undelivered items by lane then age, skipping `exclude` (those in flight).
  std::vector<outbox_item> pending(std::size_t limit, const std::set<std::int64_t>& exclude);
  void mark_delivered(std::int64_t id);
  std::size_t outbox_depth();
  std::size_t event_count();
  std::size_t reading_count();

 private:
  class statement;
  void open_database();
  void exec(const char* sql);
  void insert_readings(std::span<const reading> readings);
  /// The series id of a reading's device and point, added on first sight.
  std::int64_t series_of(const reading& r);
  void migrate();
  [[noreturn]] void fail(const char* what);
  /// store_corrupt when SQLite's last error says the file is damaged, store_error otherwise.
  [[noreturn]] void throw_error(std::string message);

  std::string path_;
  int lock_fd_{-1};  ///< "<path>.lock", flock'ed while this store is open
  sqlite3* db_{nullptr};
  std::uint64_t next_seq_{1};
  std::optional<moved_aside_database> moved_aside_;
  /// series ids by device, then point; every series is loaded at open.
  std::map<std::string, std::map<std::string, std::int64_t, std::less<>>, std::less<>> series_;
};

}  // namespace firegate
