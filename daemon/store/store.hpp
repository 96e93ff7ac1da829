#pragma once
// The gateway's durable store: readings, events and the uplink outbox in one SQLite file (WAL).
// The only code in firegate that includes sqlite3.h. Every event is committed with a full sync
// before an uplink can see it; an outbox item leaves only when the uplink reports it delivered.

#include "domain/event.hpp"
#include "domain/reading.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
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

/// Another firegated holds the database.
class store_locked : public store_error {
 public:
  using store_error::store_error;
};

/// The disk, or the database's size limit, is full (SQLITE_FULL): nothing of the failed write was
/// stored, and what was committed before is intact.
class store_full : public store_error {
 public:
  using store_error::store_error;
};

/// A database found unreadable at start and moved aside for a fresh one.
struct moved_aside_database {
  std::string moved_to;  ///< "<path>.corrupt-20261124T115500Z"
  std::string reason;    ///< what SQLite said
};

/// What a damaged database moved aside still gave up, carried into the fresh one (store::salvage).
struct salvage_report {
  std::string from;                     ///< the moved-aside file read
  std::size_t events{0};                ///< event rows carried over (history, and the alarms still open)
  std::size_t event_stretches_lost{0};  ///< damaged stretches of the events table skipped (rows unknown)
  std::size_t messages{0};              ///< undelivered alarm and fault messages carried over, sent again
  std::size_t messages_unreadable{0};   ///< undelivered messages the file names but could not give back
  /// false when the list of undelivered messages could not be read whole: the events in
  /// `resend` are then sent again, since whether they were delivered is unknown.
  bool outbox_complete{true};
  std::vector<event> resend;  ///< for the application to write and queue again
  std::string error;          ///< why the file could not be read (whole); empty when it could
  // While running (store::replace_damaged):
  std::string reason;         ///< what SQLite said of the damage
  bool in_memory{false};      ///< no fresh file could take its place: a database in memory did
  std::string memory_reason;  ///< why
};

/// Delivery lanes, in the order they go out: an alarm never waits behind faults or telemetry.
enum class lane : std::uint8_t { alarm = 0, fault = 1, telemetry = 2 };

/// An item to deliver. An event is stored as its record (domain/event_record.hpp) and `event` carries
/// it read back, for each uplink to render in its own format when it sends it. Telemetry is stored
/// once, as readings: its outbox row names a range of them, and `readings` carries them for the
/// uplink to write the message (its payload is then empty). An item held only in memory because
/// the store could not take it has a negative id.
struct outbox_item {
  std::int64_t id{0};
  firegate::lane lane{lane::telemetry};
  std::string topic;
  std::string payload;
  std::vector<reading> readings;
  /// The event behind it, when it is one (set by the uplinks' outbox reader, or by the application
  /// for an event just committed); shared by the uplinks, never changed.
  std::shared_ptr<const firegate::event> event;
};

/// Limits on what the store keeps (storage.max_size_mb, storage.max_age_days).
struct storage_bounds {
  std::uint64_t max_bytes{256ULL << 20};
  std::chrono::seconds max_age{std::chrono::hours(24 * 30)};
  /// Event history kept of each kind whatever its age (GB 25506 practice: at least 10,000 records a
  /// category, kept through power loss).
  std::size_t events_kept_per_kind{10000};
};

/// What enforce_bounds removed. Undelivered alarm and fault items are never removed.
struct eviction {
  std::uint64_t readings{0};            ///< readings removed (history and undelivered telemetry)
  std::uint64_t telemetry_messages{0};  ///< undelivered telemetry items among them
  std::uint64_t events{0};              ///< delivered events past the maximum age
  std::string reason;                   ///< "size" or "age"
  bool any() const { return readings + telemetry_messages + events > 0; }
};

/// Thread safety: none. The daemon gives it to one thread (store_worker); tests use it directly.
class store {
 public:
  /// Opens (creating if needed) and migrates the database. A file that is not a database or is
  /// damaged is moved aside (with its -wal and -shm) and a fresh one started: see moved_aside().
  /// Throws store_error for what cannot be helped here (no directory, no permission, a read-only
  /// file system, a newer schema), store_locked when another firegated uses the database.
  /// ":memory:" is a database in memory only (no lock), the daemon's fallback. `progress` is told,
  /// every few seconds, what a long migration at open is doing (for the service manager).
  explicit store(const std::string& path, std::function<void(std::string_view)> progress = {});
  /// Set when the database found at start was unreadable and moved aside.
  const std::optional<moved_aside_database>& moved_aside() const { return moved_aside_; }
  /// Reads what it can of the file moved aside (moved_aside()) and carries it into this database:
  /// every readable event row, and every readable undelivered alarm and fault message, marked
  /// `"recovered": true` and queued again under its old id. Damaged stretches are skipped, never
  /// fatal. The moved file is only read. New outbox ids start above every id the old file used.
  salvage_report salvage();
  /// Set once an operation met a damaged page (SQLITE_CORRUPT, SQLITE_NOTADB) while running.
  bool damaged() const { return damaged_; }
  /// The database met damage while running: moves it aside, opens a fresh one and salvages the
  /// old one into it (the store keeps its lock and its settings). When no fresh file can be made,
  /// or after three replacements within an hour (a failing medium), a database in memory takes its
  /// place instead, and the damaged file is salvaged into that.
  salvage_report replace_damaged();
  /// After a write failed with an I/O error: PRAGMA quick_check of the events and the outbox
  /// (within a time budget, at most once a minute); true when the store is damaged.
  bool check_after_failure();
  bool failure_check_due() const { return check_due_; }
  /// A database in memory stands in for the damaged file (replace_damaged).
  bool in_memory() const { return in_memory_; }
  /// What the integrity check at open found short of damage (it ran out of time on a large file),
  /// for the log; empty when it finished.
  const std::string& integrity_note() const { return integrity_note_; }
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  /// The schema version this build migrates to.
  static int schema_version();
  int user_version();

  /// How many uplinks deliver from this store (each keeps its own delivery state; an item is
  /// removed once every one has delivered it). Uplink numbers are 0 .. count - 1; default 1.
  /// `telemetry`: the bit mask of the uplinks that take telemetry (default: all); for the others,
  /// telemetry items are stored as delivered.
  void set_uplinks(unsigned count, std::optional<unsigned> telemetry = std::nullopt);
  void set_bounds(const storage_bounds& bounds);

  /// One transaction for these readings.
  void append_readings(std::span<const reading> readings);
  /// Readings and, when `topic` is not empty, telemetry outbox items for them (one per
  /// `max_polls` polls, a poll being a device's readings with one time), in one transaction: a
  /// batch is stored and queued together or not at all. When the database reaches its size limit,
  /// the oldest telemetry is evicted (enforce_bounds) and the batch tried once more.
  /// Returns the telemetry items queued, each as its outbox id and the readings it covers.
  struct queued_telemetry {
    std::int64_t id;
    std::size_t first, count;  ///< indexes into `readings`
  };
  std::vector<queued_telemetry> append_telemetry(std::span<const reading> readings, const std::string& topic,
                                                 std::size_t max_polls = 200);
  /// The next per-gateway event sequence number (monotonic across restarts).
  std::uint64_t next_event_seq();
  /// Stores the event and its outbox item in one fully synced transaction; returns the item's id.
  std::int64_t record_event(const event& e, lane l, const std::string& topic, const std::string& payload);
  /// Queues a message with no event behind it.
  std::int64_t enqueue(lane l, const std::string& topic, const std::string& payload);
  /// Up to `limit` items `uplink` has not delivered, skipping `exclude` (those it holds already):
  /// alarms oldest first, then faults oldest first, then telemetry alternating between the newest
  /// (live data) and the oldest (the backlog), so neither waits for the other.
  std::vector<outbox_item> pending(unsigned uplink, std::size_t limit, const std::set<std::int64_t>& exclude);
  std::vector<outbox_item> pending(std::size_t limit, const std::set<std::int64_t>& exclude) {
    return pending(0, limit, exclude);
  }
  /// Records delivery by `uplink`: alarms and faults in one transaction at once. Telemetry is noted
  /// in memory (pending() no longer hands it out) and written with the next batch of readings, the
  /// next bounds check or the store's close, not in a commit of its own: on flash every commit
  /// rewrites whole pages (docs/storage.md, "Flash"). A telemetry mark lost to a crash means that
  /// item goes again, and the receiver de-duplicates on its id.
  void mark_delivered(unsigned uplink, std::span<const std::int64_t> ids);
  void mark_delivered(std::int64_t id) { mark_delivered(0, std::span<const std::int64_t>(&id, 1)); }
  /// Removes, oldest first: readings and delivered events past the maximum age, undelivered
  /// telemetry past it, and readings with their telemetry while the database is over 90 % of its
  /// size limit. Totals since the database was created: evicted_total().
  eviction enforce_bounds(clock::time_point now);
  eviction evicted_total();
  /// Bytes of the database in use (pages in use × page size; free pages are reused first).
  std::uint64_t used_bytes();
  /// Alarms raised and not ended by a recovery, oldest first: what the alarm engine restores at
  /// start, so that an alarm still active is neither raised again nor forgotten.
  std::vector<open_alarm> open_alarms();
  /// Per device, the alarms acknowledged as false since `since` (test alarms not counted).
  std::map<std::string, unsigned> false_alarms_since(clock::time_point since);
  /// Reads the head of every lane as an uplink would, readings included; throws when it cannot.
  /// A storage fault ends only once this and a write succeed.
  void check_outbox_readable();
  /// Items not yet delivered by every uplink, by lane.
  std::array<std::size_t, 3> outbox_depth_by_lane();
  std::size_t outbox_depth();
  /// When the oldest item not yet delivered was queued; nullopt when everything is delivered.
  std::optional<clock::time_point> oldest_undelivered();
  /// What one uplink has still to deliver, by lane: how many items and when the oldest was queued.
  struct backlog {
    std::array<std::size_t, 3> waiting{};
    std::array<std::optional<clock::time_point>, 3> oldest{};
  };
  /// One a configured uplink, by delivery bit (the metrics).
  std::vector<backlog> outbox_backlog();

  // ---- the platform's commands (store_commands.cpp) ----
  /// A platform command carried out (or refused by the alarm engine), as remembered.
  struct remembered_command {
    std::string fingerprint;  ///< what it asked (parsed_command::fingerprint)
    std::string reply;        ///< the reply sent
    clock::time_point time;
  };
  /// The commands remembered since `since`, by id: loaded at start, so that a replay is known at once.
  std::map<std::string, remembered_command, std::less<>> commands_since(clock::time_point since);
  /// Remembers a command; keeps those of the last 7 days, at most 10,000 (the oldest go first).
  void remember_command(const std::string& id, const remembered_command& c);

  // ---- for firegatectl (store_queries.cpp) ----
  /// Events newest first: at most `limit`, with a sequence number below `before_seq` (0: any), of
  /// `device` (empty: every device).
  std::vector<event> event_history(const std::string& device, std::size_t limit,
                                   std::uint64_t before_seq = 0);
  /// Events whose id or alarm id starts with `prefix` (hex digits and dashes only), newest first, at
  /// most `limit` (an alarm's acknowledgement and end are among its newest): which alarms a prefix
  /// names, and what became of one that is no longer open.
  std::vector<event> alarm_events(const std::string& prefix, std::size_t limit = 200);
  /// The last reading of each point of `device`, looked for among the newest `scan` readings.
  std::vector<reading> latest_readings(const std::string& device, std::size_t scan = 500000);
  /// A page of readings taken in [from, to), oldest first, of `device` (empty: every device), after
  /// the row `after` (0: from the start); `next` is the row to pass as `after` for the next page.
  struct readings_page {
    std::vector<reading> readings;
    std::int64_t next{0};
    bool more{false};
  };
  readings_page readings_between_times(clock::time_point from, clock::time_point to,
                                       const std::string& device, std::int64_t after, std::size_t limit);
  std::size_t event_count();
  std::size_t reading_count();

 private:
  class statement;
  void open_database();
  /// An existing file that is empty or does not start with SQLite's header is damaged, not new.
  void check_header();
  /// PRAGMA quick_check: the tables an alarm depends on whole, then the file within a time budget.
  void check_integrity();
  /// New outbox rows are numbered above `above` (store_salvage.cpp).
  void raise_outbox_ids(std::int64_t above);
  void exec(const char* sql);
  std::int64_t insert_event(const event& e, lane l, const std::string& topic, const std::string& payload);
  std::vector<queued_telemetry> insert_telemetry(std::span<const reading> readings, const std::string& topic,
                                                 std::size_t max_polls);
  /// The readings of the polls with rowids in [first, last], oldest first.
  std::vector<reading> polls_between(std::int64_t first, std::int64_t last);
  /// Appends a poll row's readings to `out`: its layout's series, its values from `data`
  /// (poll_codec), those whose bit is set in `reported` (a `report` mask, schema 9). A layout it
  /// does not know, or a damaged value, ends the poll there; a series it does not know is skipped.
  void unpack_poll(std::int64_t time_ms, std::int64_t layout, std::string_view data,
                   std::vector<reading>& out, std::uint64_t reported = ~std::uint64_t{0});
  /// The layouts (lists of series) of `device`'s polls.
  std::vector<std::int64_t> layouts_of(const std::string& device) const;
  /// Schema 8: the readings, a row each, packed into a row a poll, and telemetry's ranges moved.
  void pack_readings_into_polls();
  eviction evict_until_under(std::uint64_t target_bytes);
  /// Deletes the readings with a rowid below `cut` and the undelivered telemetry starting among
  /// them, adding the counts to `into`; inside the caller's transaction.
  void evict_readings_before(std::int64_t cut, eviction& into);
  void count_eviction(const eviction& e);
  /// Sets `uplink`'s delivered bit on these rows and removes those every uplink has delivered,
  /// inside the caller's transaction.
  void set_delivered(std::size_t uplink, std::span<const std::int64_t> ids);
  /// Writes the telemetry marks held in memory, inside the caller's transaction; they are
  /// forgotten by marks_written() once it commits.
  void write_telemetry_marks();
  void marks_written();
  /// The held telemetry marks in a transaction of their own.
  void commit_telemetry_marks();
  /// Readings in the poll rows below rowid `cut`.
  std::uint64_t readings_in_polls_before(std::int64_t cut);
  /// Telemetry delivered and not yet marked in the file, by uplink.
  std::array<std::vector<std::int64_t>, 8> telemetry_marks_;
  std::array<std::size_t, 8> marks_in_transaction_{};
  /// Rolls back the open transaction and forgets series and layout ids it added.
  void rollback();
  std::vector<std::int64_t> series_added_;   ///< in the open transaction
  std::vector<std::int64_t> layouts_added_;  ///< in the open transaction
  /// The series id of a reading's device and point, added on first sight.
  std::int64_t series_of(const reading& r);
  /// The layout id of a poll of these series, in this order, added on first sight.
  std::int64_t layout_of(const std::vector<std::int64_t>& series);
  /// The layout id of the poll readings[first, end) (one device, one time): from the device's
  /// recent layouts when its points are one of them, as they nearly always are.
  std::int64_t layout_of_poll(std::span<const reading> poll);
  /// Forgets every name, series and layout (a file opened or replaced).
  void clear_names();
  void load_names();
  void migrate();
  [[noreturn]] void fail(const char* what);
  /// store_corrupt when SQLite's last error says the file is damaged, store_error otherwise.
  [[noreturn]] void throw_error(std::string message);

  std::string path_;
  std::function<void(std::string_view)> progress_;
  int lock_fd_{-1};  ///< "<path>.lock", flock'ed while this store is open
  sqlite3* db_{nullptr};
  std::uint64_t next_seq_{1};
  unsigned uplinks_{1};
  unsigned telemetry_skip_{0};  ///< delivered bits telemetry items are stored with
  storage_bounds bounds_;
  std::int64_t page_size_{4096};
  /// Each name once: a device's name, and a point name or a unit shared by every device of a profile.
  class name_pool {
   public:
    std::uint32_t intern(std::string_view s);
    std::optional<std::uint32_t> find(std::string_view s) const;
    const std::string& operator[](std::uint32_t id) const { return strings_[id]; }
    void clear();

   private:
    std::deque<std::string> strings_;  ///< a deque: its strings never move, the index's views stay
    std::unordered_map<std::string_view, std::uint32_t> ids_;
  };
  name_pool pool_;
  struct series_names {
    std::uint32_t device, point, unit;  ///< in pool_
  };
  std::unordered_map<std::int64_t, series_names> names_;  ///< series by id, for telemetry read back
  std::optional<moved_aside_database> moved_aside_;
  bool damaged_{false};
  std::string last_damage_;  ///< SQLite's message for the last damage met
  bool check_due_{false};    ///< a write failed with an I/O error since the last check
  std::chrono::steady_clock::time_point last_failure_check_{};
  std::deque<std::chrono::steady_clock::time_point> replacements_;  ///< within the last hour
  bool in_memory_{false};
  /// The highest outbox id this store has handed out, across replacements: new ids start above it.
  std::int64_t highest_id_{0};
  std::string integrity_note_;
  /// series ids by device and point (pool ids: device << 32 | point); every series is loaded at open.
  std::unordered_map<std::uint64_t, std::int64_t> series_;
  static std::uint64_t series_key(std::uint32_t device, std::uint32_t point) {
    return (std::uint64_t{device} << 32) | point;
  }
  /// The layouts a device's polls had lately (its alarm group's and its full poll's), so that a
  /// poll finds its layout by comparing point names, not by a lookup a reading.
  struct recent_layout {
    std::int64_t id{0};
    std::vector<std::uint32_t> points;  ///< in pool_
  };
  std::unordered_map<std::uint32_t, std::array<recent_layout, 2>> recent_;
  /// A poll row names its layout: the series of its values, in order (a device has one a group of
  /// points it reads together). Loaded at open.
  std::map<std::vector<std::int64_t>, std::int64_t> layout_ids_;
  std::map<std::int64_t, std::vector<std::int64_t>> layouts_;
};

}  // namespace firegate
