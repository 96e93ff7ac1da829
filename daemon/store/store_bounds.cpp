// The store's bounds: its size on disk and the age of what it keeps, and eviction, oldest first,
// to stay within them (docs/storage.md, "Bounds").

#include "statement.hpp"
#include "store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

namespace firegate {

void store::set_bounds(const storage_bounds& bounds) {
  bounds_ = bounds;
  // The hard limit: SQLite refuses to grow the file past it (SQLITE_FULL), and append_telemetry
  // evicts and retries. It cannot shrink a file already larger; eviction brings the pages in use
  // under it, and free pages are reused first.
  const auto pages = std::max<std::int64_t>(64, static_cast<std::int64_t>(bounds.max_bytes) / page_size_);
  exec(fmt::format("PRAGMA max_page_count={}", pages).c_str());
}

std::uint64_t store::used_bytes() {
  statement s(*this,
              "SELECT (SELECT page_count FROM pragma_page_count()) - "
              "(SELECT freelist_count FROM pragma_freelist_count())");
  s.step();
  return static_cast<std::uint64_t>(s.int64(0) * page_size_);
}

void store::count_eviction(const eviction& e) {
  statement s(*this,
              "INSERT INTO counters (name, value) VALUES (?, ?) "
              "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value");
  for (const auto& [name, n] : {std::pair{"evicted_readings", e.readings},
                                std::pair{"evicted_telemetry_messages", e.telemetry_messages},
                                std::pair{"evicted_events", e.events}}) {
    if (n == 0) continue;
    s.bind(1, std::string(name)).bind(2, static_cast<std::int64_t>(n));
    s.step();
    s.reset();
  }
}

eviction store::evicted_total() {
  eviction e;
  statement s(*this, "SELECT name, value FROM counters WHERE name LIKE 'evicted_%'");
  while (s.step()) {
    const auto name = s.text(0);
    const auto n = static_cast<std::uint64_t>(s.int64(1));
    if (name == "evicted_readings") e.readings = n;
    if (name == "evicted_telemetry_messages") e.telemetry_messages = n;
    if (name == "evicted_events") e.events = n;
  }
  return e;
}

void store::evict_readings_before(std::int64_t cut, eviction& into) {
  // Undelivered telemetry that starts among them goes with them.
  statement tele(*this, "DELETE FROM outbox WHERE lane = ? AND first_poll < ?");
  tele.bind(1, std::int64_t{static_cast<int>(lane::telemetry)}).bind(2, cut);
  tele.step();
  into.telemetry_messages += static_cast<std::uint64_t>(sqlite3_changes(db_));
  into.readings += readings_in_polls_before(cut);
  statement del(*this, "DELETE FROM polls WHERE rowid < ?");
  del.bind(1, cut);
  del.step();
}

eviction store::evict_until_under(std::uint64_t target_bytes) {
  // Oldest first, a tenth of the polls at a time: the readings and every undelivered telemetry
  // item that starts among them. Alarm and fault items are never touched.
  eviction total;
  total.reason = "size";
  exec("BEGIN IMMEDIATE");
  try {
    write_telemetry_marks();  // before the rows they name may go
    for (int round = 0; round < 50 && used_bytes() > target_bytes; ++round) {
      statement span(*this, "SELECT MIN(rowid), MAX(rowid) FROM polls");
      span.step();
      if (span.is_null(0)) break;
      const auto first = span.int64(0), last = span.int64(1);
      evict_readings_before(first + std::max<std::int64_t>(250, (last - first + 1) / 10), total);
    }
    count_eviction(total);
    exec("COMMIT");
    marks_written();
  } catch (...) {
    rollback();
    throw;
  }
  return total;
}

eviction store::enforce_bounds(clock::time_point now) {
  eviction aged;
  aged.reason = "age";
  const auto cutoff = to_ms(now - bounds_.max_age);
  exec("BEGIN IMMEDIATE");
  try {
    write_telemetry_marks();
    // Polls are appended in time order, so the first one young enough marks the cut.
    statement young(*this, "SELECT rowid FROM polls WHERE time_ms >= ? ORDER BY rowid LIMIT 1");
    young.bind(1, cutoff);
    std::optional<std::int64_t> cut;
    if (young.step()) {
      cut = young.int64(0);
    } else {
      statement any(*this, "SELECT MAX(rowid) + 1 FROM polls");
      if (any.step() && !any.is_null(0)) cut = any.int64(0);
    }
    if (cut) evict_readings_before(*cut, aged);
    // Telemetry items from before schema 3 carry their payload and no readings.
    statement legacy(*this, "DELETE FROM outbox WHERE lane = ? AND first_poll IS NULL AND created_ms < ?");
    legacy.bind(1, std::int64_t{static_cast<int>(lane::telemetry)}).bind(2, cutoff);
    legacy.step();
    aged.telemetry_messages += static_cast<std::uint64_t>(sqlite3_changes(db_));
    // Event history past its age, but never the newest 10,000 of a kind (GB 25506 practice: a fire
    // display and transmission device keeps at least 10,000 records a category). An event's
    // undelivered outbox item is separate and stays in any case.
    std::vector<std::string> kinds;
    {
      statement k(*this, "SELECT DISTINCT kind FROM events");
      while (k.step()) kinds.push_back(k.text(0));
    }
    for (const auto& kind : kinds) {
      statement keep(*this, "SELECT seq FROM events WHERE kind = ? ORDER BY seq DESC LIMIT 1 OFFSET ?");
      keep.bind(1, kind).bind(2, static_cast<std::int64_t>(bounds_.events_kept_per_kind));
      if (!keep.step()) continue;  // no more than that many
      statement events(*this, "DELETE FROM events WHERE kind = ? AND time_ms < ? AND seq <= ?");
      events.bind(1, kind).bind(2, cutoff).bind(3, keep.int64(0));
      events.step();
      aged.events += static_cast<std::uint64_t>(sqlite3_changes(db_));
    }
    count_eviction(aged);
    exec("COMMIT");
    marks_written();
  } catch (...) {
    rollback();
    throw;
  }
  if (used_bytes() > bounds_.max_bytes * 9 / 10) {
    auto sized = evict_until_under(bounds_.max_bytes * 8 / 10);
    aged.readings += sized.readings;
    aged.telemetry_messages += sized.telemetry_messages;
    if (sized.any()) aged.reason = aged.readings == sized.readings ? "size" : "age and size";
  }
  return aged;
}

}  // namespace firegate
