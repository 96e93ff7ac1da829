#include "store.hpp"

#include "poll_codec.hpp"
#include "statement.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

namespace firegate {

/// Renames an unreadable database and its WAL files to "<path>.corrupt-<UTC time>", keeping them
/// for inspection (and store::salvage), so that a fresh database can take the path.
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

namespace {

/// A poll's value i in its `report` mask (schema 9): bit i, bit 63 for every value from the 64th on.
constexpr std::uint64_t report_bit(std::size_t i) {
  return std::uint64_t{1} << std::min<std::size_t>(i, 63);
}

/// One firegated per database: an exclusive flock on "<path>.lock" (held until the store closes,
/// released by the kernel if the process dies), with the holder's pid in the file for the message.
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
    throw store_locked(
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

store::store(const std::string& path, std::function<void(std::string_view)> progress)
    : path_(path), progress_(std::move(progress)), lock_fd_(path == ":memory:" ? -1 : lock_database(path)) {
  try {
    try {
      open_database();
    } catch (const store_corrupt& e) {
      if (lock_fd_ < 0) throw;
      moved_aside_ = move_aside(path_, e.what());
      open_database();
    }
  } catch (...) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    throw;
  }
}

std::uint32_t store::name_pool::intern(std::string_view s) {
  if (auto it = ids_.find(s); it != ids_.end()) return it->second;
  const auto id = static_cast<std::uint32_t>(strings_.size());
  ids_.emplace(strings_.emplace_back(s), id);
  return id;
}

std::optional<std::uint32_t> store::name_pool::find(std::string_view s) const {
  if (auto it = ids_.find(s); it != ids_.end()) return it->second;
  return std::nullopt;
}

void store::name_pool::clear() {
  ids_.clear();
  strings_.clear();
}

void store::clear_names() {
  series_.clear();
  names_.clear();
  layout_ids_.clear();
  layouts_.clear();
  recent_.clear();
  pool_.clear();
}

void store::load_names() {
  clear_names();
  statement all(*this, "SELECT id, device, point, unit FROM series");
  while (all.step()) {
    const series_names n{pool_.intern(all.text(1)), pool_.intern(all.text(2)), pool_.intern(all.text(3))};
    series_[series_key(n.device, n.point)] = all.int64(0);
    names_[all.int64(0)] = n;
  }
  if (user_version() < 8) return;  // while migrating: the polls come with schema 8
  statement layouts(*this, "SELECT id, series FROM layouts");
  while (layouts.step()) {
    std::vector<std::int64_t> ids;
    const auto text = layouts.text(1);
    for (std::size_t at = 0; at < text.size();) {
      auto comma = text.find(',', at);
      if (comma == std::string::npos) comma = text.size();
      ids.push_back(std::strtoll(text.c_str() + at, nullptr, 10));
      at = comma + 1;
    }
    layout_ids_[ids] = layouts.int64(0);
    layouts_[layouts.int64(0)] = std::move(ids);
  }
}

void store::open_database() {
  // Marks of another file's telemetry (a damaged file replaced) mean nothing in this one.
  for (auto& marks : telemetry_marks_) marks.clear();
  clear_names();
  next_seq_ = 1;
  damaged_ = false;
  integrity_note_.clear();
  if (lock_fd_ >= 0) check_header();
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
  if (sqlite3_db_readonly(db_, "main") == 1) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw store_error(
        fmt::format("database path={} can only be read (a read-only file system, or the file's permissions) "
                    "check=\"mount, dmesg for file system errors, and that firegate owns the file\"",
                    path_));
  }
  try {
    exec("PRAGMA journal_mode=WAL");
    // FULL: every commit (an event above all) is on disk before the uplink may see it.
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
    // The store appends and reads the outbox's head: 512 KiB of page cache is plenty, and the
    // default 2 MiB is a tenth of the daemon's memory budget (docs/performance.md).
    exec("PRAGMA cache_size=-512");
    check_integrity();
    migrate();
    {
      statement ps(*this, "PRAGMA page_size");
      ps.step();
      page_size_ = ps.int64(0);
    }
    set_bounds(bounds_);
    {
      statement top(*this, "SELECT COALESCE(MAX(id), 0) FROM outbox");
      top.step();
      highest_id_ = std::max<std::int64_t>(highest_id_, top.int64(0));
    }
    statement s(*this, "SELECT COALESCE(MAX(seq), 0) FROM events");
    s.step();
    next_seq_ = static_cast<std::uint64_t>(s.int64(0)) + 1;
    load_names();
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

store::~store() {
  if (db_ != nullptr) {
    // The telemetry delivered since the last batch, so that it does not go again after a restart.
    try {
      commit_telemetry_marks();
    } catch (const store_error&) {
      // They go again after the restart; the receiver de-duplicates on the id.
    }
    sqlite3_close(db_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

void store::fail(const char* what) {
  const int code = sqlite3_errcode(db_) & 0xFF;
  const bool damage = code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
  throw_error(
      fmt::format("database error path={} op={} error=\"{}\" check=\"{}\"", path_, what, sqlite3_errmsg(db_),
                  damage ? "the file is damaged: firegated moves it aside and carries over what it can read"
                         : "disk space and file permissions"));
}

void store::throw_error(std::string message) {
  const int code = sqlite3_errcode(db_) & 0xFF;
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
    damaged_ = true;
    last_damage_ = message;
    throw store_corrupt(std::move(message));
  }
  if (code == SQLITE_IOERR) check_due_ = true;
  if (code == SQLITE_FULL) throw store_full(std::move(message));
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

int store::user_version() {
  statement s(*this, "PRAGMA user_version");
  s.step();
  return static_cast<int>(s.int64(0));
}

std::int64_t store::series_of(const reading& r) {
  const auto device = pool_.intern(r.device);
  const auto point = pool_.intern(r.point);
  if (auto it = series_.find(series_key(device, point)); it != series_.end()) return it->second;
  statement add(*this, "INSERT INTO series (device, point, unit) VALUES (?, ?, ?)");
  add.bind(1, r.device).bind(2, r.point).bind(3, r.unit);
  add.step();
  const auto id = sqlite3_last_insert_rowid(db_);
  series_.emplace(series_key(device, point), id);
  names_[id] = {device, point, pool_.intern(r.unit)};
  series_added_.push_back(id);
  return id;
}

std::int64_t store::layout_of_poll(std::span<const reading> poll) {
  auto& recent = recent_[pool_.intern(poll.front().device)];
  const auto same = [&](const recent_layout& l) {
    if (l.id == 0 || l.points.size() != poll.size()) return false;
    for (std::size_t k = 0; k < poll.size(); ++k) {
      if (pool_[l.points[k]] != poll[k].point) return false;
    }
    return true;
  };
  if (same(recent[0])) return recent[0].id;
  if (same(recent[1])) {
    std::swap(recent[0], recent[1]);  // the most recent first
    return recent[0].id;
  }
  std::vector<std::int64_t> series;
  series.reserve(poll.size());
  recent_layout found;
  for (const auto& r : poll) {
    series.push_back(series_of(r));
    found.points.push_back(names_[series.back()].point);
  }
  found.id = layout_of(series);
  recent[1] = std::move(recent[0]);
  recent[0] = std::move(found);
  return recent[0].id;
}

std::int64_t store::layout_of(const std::vector<std::int64_t>& series) {
  if (auto it = layout_ids_.find(series); it != layout_ids_.end()) return it->second;
  statement add(*this, "INSERT INTO layouts (series) VALUES (?)");
  add.bind(1, fmt::format("{}", fmt::join(series, ",")));
  add.step();
  const auto id = sqlite3_last_insert_rowid(db_);
  layout_ids_.emplace(series, id);
  layouts_.emplace(id, series);
  layouts_added_.push_back(id);
  return id;
}

void store::rollback() {
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  if (!layouts_added_.empty()) recent_.clear();  // they may name a layout that is gone now
  for (const auto id : layouts_added_) {
    if (auto it = layouts_.find(id); it != layouts_.end()) {
      layout_ids_.erase(it->second);
      layouts_.erase(it);
    }
  }
  layouts_added_.clear();
  for (const auto id : series_added_) {
    if (auto n = names_.find(id); n != names_.end()) {
      series_.erase(series_key(n->second.device, n->second.point));
      names_.erase(n);
    }
  }
  series_added_.clear();
}

void store::set_uplinks(unsigned count, std::optional<unsigned> telemetry) {
  if (count < 1 || count > 8) throw std::invalid_argument("store::set_uplinks: 1 to 8 uplinks");
  uplinks_ = count;
  const unsigned all = (1U << count) - 1;
  // Telemetry is born delivered for the uplinks that do not take it.
  telemetry_skip_ = all & ~telemetry.value_or(all);
}

std::vector<store::queued_telemetry> store::insert_telemetry(std::span<const reading> readings,
                                                             const std::string& topic,
                                                             std::size_t max_polls) {
  std::vector<queued_telemetry> queued;
  statement s(*this, "INSERT INTO polls (time_ms, layout, data, report) VALUES (?, ?, ?, ?)");
  statement out(*this,
                "INSERT INTO outbox (id, lane, topic, payload, created_ms, first_poll, last_poll, delivered) "
                "VALUES (?, ?, ?, '', ?, ?, ?, ?)");
  const auto now = to_ms(clock::now());
  std::int64_t first = 0, last = 0;
  std::size_t polls = 0, first_index = 0;
  const auto emit = [&](std::size_t end) {
    if (polls == 0 || topic.empty()) return;
    // Ids are never handed out twice while running, even when the highest row was evicted: an
    // acknowledgement or a telemetry mark still under way names the old item, never a new one.
    out.bind(1, highest_id_ + 1)
        .bind(2, std::int64_t{static_cast<int>(lane::telemetry)})
        .bind(3, topic)
        .bind(4, now);
    out.bind(5, first).bind(6, last).bind(7, std::int64_t{telemetry_skip_});
    out.step();
    out.reset();
    queued.push_back({sqlite3_last_insert_rowid(db_), first_index, end - first_index});
    highest_id_ = std::max<std::int64_t>(highest_id_, queued.back().id);
    polls = 0;
  };
  std::string data;
  for (std::size_t i = 0; i < readings.size();) {
    // A poll is a run of readings of one device with one time (drivers report them so): one row,
    // its values packed (poll_codec), its points named once by its layout.
    const auto& head = readings[i];
    std::size_t end = i + 1;
    while (end < readings.size() && readings[end].time == head.time && readings[end].device == head.device)
      ++end;
    if (polls >= max_polls) emit(i);
    data.clear();
    std::uint64_t reported = 0;
    bool all = true;
    const auto layout = layout_of_poll(readings.subspan(i, end - i));
    for (std::size_t j = i; j < end; ++j) {
      poll_codec::append(data, readings[j].value, readings[j].q);
      if (readings[j].reported) reported |= report_bit(j - i);
      all &= readings[j].reported;
    }
    s.bind(1, to_ms(head.time)).bind(2, layout).bind_blob_kept(3, data);  // unchanged until the reset below
    if (!all) s.bind(4, static_cast<std::int64_t>(reported));             // NULL: every value reported
    s.step();
    s.reset();
    i = end;
    // A poll none of whose values is reported is stored, but no telemetry carries it.
    if (reported == 0) continue;
    last = sqlite3_last_insert_rowid(db_);
    if (polls == 0) {
      first = last;
      first_index = static_cast<std::size_t>(&head - readings.data());
    }
    ++polls;
  }
  emit(readings.size());
  return queued;
}

void store::append_readings(std::span<const reading> readings) {
  append_telemetry(readings, {}, 0);
}

std::vector<store::queued_telemetry> store::append_telemetry(std::span<const reading> readings,
                                                             const std::string& topic,
                                                             std::size_t max_polls) {
  if (readings.empty()) return {};
  for (int attempt = 0;; ++attempt) {
    exec("BEGIN");
    try {
      write_telemetry_marks();
      auto queued = insert_telemetry(readings, topic, std::max<std::size_t>(max_polls, 1));
      exec("COMMIT");
      marks_written();
      series_added_.clear();
      layouts_added_.clear();
      return queued;
    } catch (const store_full&) {
      rollback();
      // The size limit, or the disk: make room from the oldest telemetry and try once more. On a
      // full disk the eviction itself may fail; the caller keeps the batch and reports the fault.
      if (attempt > 0) throw;
      const auto e = evict_until_under(bounds_.max_bytes * 8 / 10);
      if (!e.any()) throw;
    } catch (...) {
      rollback();
      throw;
    }
  }
}

std::uint64_t store::next_event_seq() {
  return next_seq_++;
}

std::int64_t store::record_event(const event& e, lane l, const std::string& topic,
                                 const std::string& payload) {
  try {
    return insert_event(e, l, topic, payload);
  } catch (const store_full&) {
    // Room is made from the oldest telemetry, never by refusing an event.
    if (!evict_until_under(bounds_.max_bytes * 8 / 10).any()) throw;
    return insert_event(e, l, topic, payload);
  }
}

std::int64_t store::insert_event(const event& e, lane l, const std::string& topic,
                                 const std::string& payload) {
  exec("BEGIN");
  try {
    statement ev(
        *this,
        "INSERT INTO events (seq, id, kind, device, point, value, time_ms, alarm_id, detail, rule, "
        "actor, verdict, repeat, test, until_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ev.bind(1, static_cast<std::int64_t>(e.seq)).bind(2, e.id).bind(3, std::string(to_string(e.kind)));
    ev.bind(4, e.device)
        .bind(5, e.point)
        .bind(6, e.value)
        .bind(7, to_ms(e.time))
        .bind(8, e.alarm_id)
        .bind(9, e.detail)
        .bind(10, e.rule)
        .bind(11, e.actor)
        .bind(12, e.verdict)
        .bind(13, std::int64_t{e.repeat})
        .bind(14, std::int64_t{e.test ? 1 : 0});
    if (e.until) ev.bind(15, to_ms(*e.until));
    ev.step();
    const auto id = enqueue(l, topic, payload);
    exec("COMMIT");
    return id;
  } catch (...) {
    rollback();
    throw;
  }
}

std::int64_t store::enqueue(lane l, const std::string& topic, const std::string& payload) {
  statement out(*this, "INSERT INTO outbox (id, lane, topic, payload, created_ms) VALUES (?, ?, ?, ?, ?)");
  // Above every id handed out while running (insert_telemetry says why).
  out.bind(1, highest_id_ + 1)
      .bind(2, std::int64_t{static_cast<int>(l)})
      .bind(3, topic)
      .bind(4, payload)
      .bind(5, to_ms(clock::now()));
  out.step();
  const auto id = sqlite3_last_insert_rowid(db_);
  highest_id_ = std::max<std::int64_t>(highest_id_, id);
  return id;
}

void store::unpack_poll(std::int64_t time_ms, std::int64_t layout, std::string_view data,
                        std::vector<reading>& out, std::uint64_t reported) {
  const auto it = layouts_.find(layout);
  if (it == layouts_.end()) return;
  const clock::time_point time{std::chrono::milliseconds(time_ms)};
  for (std::size_t i = 0; i < it->second.size(); ++i) {
    reading r;
    if (!poll_codec::next(data, r.value, r.q)) return;
    if ((reported & report_bit(i)) == 0) continue;
    const auto n = names_.find(it->second[i]);
    if (n == names_.end()) continue;
    r.device = pool_[n->second.device];
    r.point = pool_[n->second.point];
    r.unit = pool_[n->second.unit];
    r.time = time;
    out.push_back(std::move(r));
  }
}

std::vector<reading> store::polls_between(std::int64_t first, std::int64_t last) {
  std::vector<reading> out;
  statement s(*this, "SELECT time_ms, layout, data, report FROM polls WHERE rowid BETWEEN ? AND ?");
  s.bind(1, first).bind(2, last);
  while (s.step()) {
    // Only the values reported (schema 9; NULL: all of them): the others were stored, not sent.
    unpack_poll(s.int64(0), s.int64(1), s.blob(2), out,
                s.is_null(3) ? ~std::uint64_t{0} : static_cast<std::uint64_t>(s.int64(3)));
  }
  return out;
}

std::vector<open_alarm> store::open_alarms() {
  std::vector<open_alarm> out;
  // Open: no event that ends it names it. Its acknowledgement and escalations name it too.
  statement s(
      *this,
      "SELECT e.id, e.kind, e.device, e.rule, e.point, e.value, e.time_ms, e.detail, e.actor, e.test, "
      "e.until_ms, "
      "(SELECT a.verdict FROM events a WHERE a.alarm_id = e.id AND a.kind = 'alarm_acknowledged'), "
      "(SELECT a.actor FROM events a WHERE a.alarm_id = e.id AND a.kind = 'alarm_acknowledged'), "
      "(SELECT COUNT(*) FROM events x WHERE x.alarm_id = e.id AND x.kind = 'alarm_escalation') "
      "FROM events e WHERE e.kind IN ('fire_alarm', 'supervisory_alarm', 'device_fault', "
      "'device_offline', 'device_shielded', 'test_mode_started', 'bus_offline', 'config_rejected', "
      "'clock_unsynchronised') "
      "AND NOT EXISTS (SELECT 1 FROM events r WHERE r.alarm_id = e.id AND r.kind IN ('fire_recovery', "
      "'supervisory_recovery', 'device_fault_recovery', 'device_online', 'device_unshielded', "
      "'test_mode_ended', 'bus_online', 'config_applied', 'clock_synchronised')) ORDER BY e.seq");
  while (s.step()) {
    open_alarm a;
    a.id = s.text(0);
    a.kind = parse_event_kind(s.text(1)).value_or(event_kind::device_fault);
    a.device = s.text(2);
    a.rule = s.text(3);
    a.point = s.text(4);
    a.value = s.real(5);
    a.time = clock::time_point(std::chrono::milliseconds(s.int64(6)));
    a.detail = s.text(7);
    a.actor = s.text(8);  // a shield's or test mode's: who set it
    a.test = s.int64(9) != 0;
    if (!s.is_null(10)) a.until = clock::time_point(std::chrono::milliseconds(s.int64(10)));
    if (!s.is_null(11)) {
      a.verdict = s.text(11);
      a.actor = s.text(12);  // an alarm's: who acknowledged it
    }
    a.repeats = static_cast<unsigned>(s.int64(13));
    out.push_back(std::move(a));
  }
  return out;
}

std::map<std::string, unsigned> store::false_alarms_since(clock::time_point since) {
  std::map<std::string, unsigned> out;
  statement s(*this,
              "SELECT device, COUNT(*) FROM events WHERE kind = 'alarm_acknowledged' AND verdict = 'false' "
              "AND test = 0 AND time_ms >= ? GROUP BY device");
  s.bind(1, to_ms(since));
  while (s.step()) out[s.text(0)] = static_cast<unsigned>(s.int64(1));
  return out;
}

std::size_t store::event_count() {
  statement s(*this, "SELECT COUNT(*) FROM events");
  s.step();
  return static_cast<std::size_t>(s.int64(0));
}

std::size_t store::reading_count() {
  return static_cast<std::size_t>(readings_in_polls_before(std::numeric_limits<std::int64_t>::max()));
}

std::uint64_t store::readings_in_polls_before(std::int64_t cut) {
  // A poll row holds as many readings as its layout has series.
  std::uint64_t n = 0;
  statement s(*this, "SELECT layout, COUNT(*) FROM polls WHERE rowid < ? GROUP BY layout");
  s.bind(1, cut);
  while (s.step()) {
    if (auto it = layouts_.find(s.int64(0)); it != layouts_.end()) {
      n += it->second.size() * static_cast<std::uint64_t>(s.int64(1));
    }
  }
  return n;
}

}  // namespace firegate
