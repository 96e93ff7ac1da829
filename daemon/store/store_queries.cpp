// The store's read-only queries for the technician's CLI (the control API, docs/control-api.md):
// event history, last values, readings of a time window. None writes; each is bounded.

#include "statement.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

namespace firegate {

/// A reading from its series' names and the row's time, value and quality columns (from `col`).
reading store::reading_at(statement& s, std::int64_t series, int col) {
  const auto& n = names_[series];
  reading r;
  r.device = n.device;
  r.point = n.point;
  r.unit = n.unit;
  r.time = clock::time_point(std::chrono::milliseconds(s.int64(col)));
  r.value = s.real(col + 1);
  r.q = s.int64(col + 2) == 0 ? quality::good : quality::bad;
  return r;
}

std::optional<clock::time_point> store::oldest_undelivered() {
  statement s(*this, "SELECT MIN(created_ms) FROM outbox WHERE lane < 3");
  if (!s.step() || s.is_null(0)) return std::nullopt;
  return clock::time_point(std::chrono::milliseconds(s.int64(0)));
}

std::vector<event> store::event_history(const std::string& device, std::size_t limit,
                                        std::uint64_t before_seq) {
  std::vector<event> out;
  const auto sql = fmt::format(
      "SELECT {} FROM events WHERE (?1 = '' OR device = ?1) AND (?2 = 0 OR seq < ?2) ORDER BY seq DESC "
      "LIMIT ?3",
      event_columns);
  statement s(*this, sql.c_str());
  s.bind(1, device).bind(2, static_cast<std::int64_t>(before_seq)).bind(3, static_cast<std::int64_t>(limit));
  while (s.step()) {
    auto e = event_of_row(s.raw());
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<reading> store::latest_readings(const std::string& device, std::size_t scan) {
  std::vector<reading> out;
  auto it = series_.find(device);
  if (it == series_.end()) return out;
  std::set<std::int64_t> wanted;
  for (const auto& [point, id] : it->second) wanted.insert(id);
  // Newest first, stopping once every point is found: the rowid is the time order.
  statement s(
      *this,
      "SELECT series, time_ms, value, quality FROM readings WHERE rowid > (SELECT IFNULL(MAX(rowid), 0) "
      "FROM readings) - ? ORDER BY rowid DESC");
  s.bind(1, static_cast<std::int64_t>(scan));
  while (!wanted.empty() && s.step()) {
    const auto id = s.int64(0);
    if (wanted.erase(id) == 0) continue;
    out.push_back(reading_at(s, id, 1));
  }
  std::sort(out.begin(), out.end(), [](const reading& a, const reading& b) { return a.point < b.point; });
  return out;
}

store::readings_page store::readings_between_times(clock::time_point from, clock::time_point to,
                                                   const std::string& device, std::int64_t after,
                                                   std::size_t limit) {
  readings_page page;
  std::string series_filter;
  if (!device.empty()) {
    auto it = series_.find(device);
    if (it == series_.end()) return page;  // never read: nothing to export
    std::vector<std::string> ids;
    for (const auto& [point, id] : it->second) ids.push_back(std::to_string(id));
    series_filter = fmt::format(" AND series IN ({})", fmt::join(ids, ","));
  }
  // Integers the store made itself, so composing them into the text is safe.
  const auto sql = fmt::format(
      "SELECT rowid, series, time_ms, value, quality FROM readings WHERE rowid > ? AND time_ms >= ? AND "
      "time_ms < ?{} ORDER BY rowid LIMIT ?",
      series_filter);
  statement s(*this, sql.c_str());
  s.bind(1, after).bind(2, to_ms(from)).bind(3, to_ms(to)).bind(4, static_cast<std::int64_t>(limit + 1));
  page.next = after;
  while (s.step()) {
    if (page.readings.size() == limit) {
      page.more = true;
      break;
    }
    page.next = s.int64(0);
    page.readings.push_back(reading_at(s, s.int64(1), 2));
  }
  return page;
}

}  // namespace firegate
