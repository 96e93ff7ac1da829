// The store's read-only queries for the technician's CLI (the control API, docs/control-api.md):
// event history, last values, readings of a time window. None writes; each is bounded.

#include "statement.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

namespace firegate {

std::vector<std::int64_t> store::layouts_of(const std::string& device) const {
  std::vector<std::int64_t> out;
  const auto wanted = pool_.find(device);
  if (!wanted) return out;
  for (const auto& [id, series] : layouts_) {
    if (series.empty()) continue;
    if (auto n = names_.find(series.front()); n != names_.end() && n->second.device == *wanted)
      out.push_back(id);
  }
  return out;
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

std::vector<event> store::alarm_events(const std::string& prefix, std::size_t limit) {
  // GLOB with a literal prefix uses the id and alarm id indexes; the caller allows no wildcard.
  std::vector<event> out;
  const auto sql = fmt::format(
      "SELECT {} FROM events WHERE id GLOB ?1 OR alarm_id GLOB ?1 ORDER BY seq DESC LIMIT ?2", event_columns);
  statement s(*this, sql.c_str());
  s.bind(1, prefix + "*").bind(2, static_cast<std::int64_t>(limit));
  while (s.step()) out.push_back(event_of_row(s.raw()));
  return out;
}

std::vector<reading> store::latest_readings(const std::string& device, std::size_t scan) {
  std::vector<reading> out;
  const auto layouts = layouts_of(device);
  if (layouts.empty()) return out;
  std::set<std::string, std::less<>> wanted;
  for (const auto id : layouts) {
    for (const auto series : layouts_.at(id)) {
      if (auto n = names_.find(series); n != names_.end()) wanted.insert(pool_[n->second.point]);
    }
  }
  // Newest first, stopping once every point is found: the rowid is the time order. A poll holds
  // several readings, so `scan` readings are at most that many polls.
  const auto sql = fmt::format(
      "SELECT time_ms, layout, data FROM polls WHERE rowid > (SELECT IFNULL(MAX(rowid), 0) FROM polls) - ? "
      "AND layout IN ({}) ORDER BY rowid DESC",
      fmt::join(layouts, ","));
  statement s(*this, sql.c_str());
  s.bind(1, static_cast<std::int64_t>(scan));
  std::vector<reading> poll;
  while (!wanted.empty() && s.step()) {
    poll.clear();
    unpack_poll(s.int64(0), s.int64(1), s.blob(2), poll);
    for (auto& r : poll) {
      if (auto w = wanted.find(r.point); w != wanted.end()) {
        wanted.erase(w);
        out.push_back(std::move(r));
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const reading& a, const reading& b) { return a.point < b.point; });
  return out;
}

store::readings_page store::readings_between_times(clock::time_point from, clock::time_point to,
                                                   const std::string& device, std::int64_t after,
                                                   std::size_t limit) {
  readings_page page;
  page.next = after;
  std::string layout_filter;
  if (!device.empty()) {
    const auto layouts = layouts_of(device);
    if (layouts.empty()) return page;  // never read: nothing to export
    layout_filter = fmt::format(" AND layout IN ({})", fmt::join(layouts, ","));
  }
  // Integers the store made itself, so composing them into the text is safe. A page ends with a
  // whole poll (`next` is a poll's rowid), so it may hold a few more than `limit` readings.
  const auto sql = fmt::format(
      "SELECT rowid, time_ms, layout, data FROM polls WHERE rowid > ? AND time_ms >= ? AND time_ms < ?{} "
      "ORDER BY rowid LIMIT ?",
      layout_filter);
  statement s(*this, sql.c_str());
  s.bind(1, after).bind(2, to_ms(from)).bind(3, to_ms(to)).bind(4, static_cast<std::int64_t>(limit + 1));
  std::size_t rows = 0;
  while (s.step()) {
    if (page.readings.size() >= limit) {
      page.more = true;
      break;
    }
    ++rows;
    page.next = s.int64(0);
    unpack_poll(s.int64(1), s.int64(2), s.blob(3), page.readings);
  }
  // Every row the limit allowed came back, some with fewer readings (a damaged row gives none):
  // there may be more.
  if (rows > limit) page.more = true;
  return page;
}

}  // namespace firegate
