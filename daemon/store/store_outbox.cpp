// Delivery (docs/storage.md, "Delivery"): the outbox handed out to each uplink, alarms first and
// telemetry's live and backlog ends in turn; delivery marks (an alarm's at once, telemetry's with
// the next flush: "Flash"); how much is still waiting.

#include "statement.hpp"
#include "store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace firegate {

std::vector<outbox_item> store::pending(unsigned uplink, std::size_t limit,
                                        const std::set<std::int64_t>& exclude) {
  // Candidates first; the readings of a telemetry item are read only once it is chosen.
  struct candidate {
    outbox_item item;
    std::optional<std::pair<std::int64_t, std::int64_t>> range;  ///< telemetry: rowids of its polls
  };
  std::vector<candidate> chosen;
  const std::int64_t bit = std::int64_t{1} << uplink;
  // Telemetry delivered but not yet marked in the file is not handed out again.
  std::set<std::int64_t> with_marks;
  if (uplink < telemetry_marks_.size() && !telemetry_marks_[uplink].empty()) {
    with_marks = exclude;
    with_marks.insert(telemetry_marks_[uplink].begin(), telemetry_marks_[uplink].end());
  }
  const auto& skip = with_marks.empty() ? exclude : with_marks;
  const auto fetch = [&](lane l, bool newest_first, std::size_t n) {
    std::vector<candidate> got;
    statement s(*this, newest_first ? "SELECT id, topic, payload, first_poll, last_poll FROM outbox "
                                      "WHERE lane = ? AND (delivered & ?) = 0 ORDER BY id DESC LIMIT ?"
                                    : "SELECT id, topic, payload, first_poll, last_poll FROM outbox "
                                      "WHERE lane = ? AND (delivered & ?) = 0 ORDER BY id LIMIT ?");
    s.bind(1, std::int64_t{static_cast<int>(l)})
        .bind(2, bit)
        .bind(3, static_cast<std::int64_t>(n + skip.size()));
    while (got.size() < n && s.step()) {
      const auto id = s.int64(0);
      if (skip.contains(id)) continue;
      candidate c{{id, l, s.text(1), s.text(2), {}, {}}, std::nullopt};
      if (!s.is_null(3)) c.range = std::pair{s.int64(3), s.int64(4)};
      got.push_back(std::move(c));
    }
    return got;
  };
  for (const lane l : {lane::alarm, lane::fault}) {
    if (chosen.size() >= limit) break;
    for (auto& c : fetch(l, false, limit - chosen.size())) chosen.push_back(std::move(c));
  }
  const std::size_t events = chosen.size();
  std::vector<outbox_item> items;
  items.reserve(limit);
  for (std::size_t i = 0; i < events; ++i) items.push_back(std::move(chosen[i].item));
  // Telemetry lives on other pages (polls above all): damage there must not keep the alarms
  // and faults read above from going out. The damage is noted (damaged()) for the owner to act on.
  try {
    if (chosen.size() < limit) {
      const auto want = limit - chosen.size();
      auto newest = fetch(lane::telemetry, true, want);
      auto oldest = fetch(lane::telemetry, false, want);
      std::set<std::int64_t> taken;
      for (std::size_t i = 0; chosen.size() < limit && (i < newest.size() || i < oldest.size()); ++i) {
        for (auto* from : {&newest, &oldest}) {
          if (i < from->size() && chosen.size() < limit && taken.insert((*from)[i].item.id).second) {
            chosen.push_back(std::move((*from)[i]));
          }
        }
      }
    }
    for (std::size_t i = events; i < chosen.size(); ++i) {
      auto& c = chosen[i];
      if (c.range) c.item.readings = polls_between(c.range->first, c.range->second);
      items.push_back(std::move(c.item));
    }
  } catch (const store_corrupt&) {
    if (events == 0) throw;
    items.resize(events);
  }
  return items;
}

void store::mark_delivered(unsigned uplink, std::span<const std::int64_t> ids) {
  if (ids.empty()) return;
  std::vector<std::int64_t> events;
  {
    statement lane_of(*this, "SELECT lane FROM outbox WHERE id = ?");
    for (const auto id : ids) {
      lane_of.bind(1, id);
      const bool telemetry = lane_of.step() && lane_of.int64(0) == static_cast<int>(lane::telemetry);
      lane_of.reset();
      if (telemetry && uplink < telemetry_marks_.size()) {
        telemetry_marks_[uplink].push_back(id);
      } else {
        events.push_back(id);
      }
    }
  }
  // While no batch of readings commits (every device silent, a full disk) the marks would pile up:
  // past a bound they are committed on their own.
  std::size_t held = 0;
  for (const auto& marks : telemetry_marks_) held += marks.size();
  if (held > 2000) commit_telemetry_marks();
  if (events.empty()) return;
  exec("BEGIN");
  try {
    set_delivered(uplink, events);
    exec("COMMIT");
  } catch (...) {
    rollback();
    throw;
  }
}

void store::set_delivered(std::size_t uplink, std::span<const std::int64_t> ids) {
  const std::int64_t all = (std::int64_t{1} << uplinks_) - 1;
  statement mark(*this, "UPDATE outbox SET delivered = delivered | ? WHERE id = ?");
  statement done(*this, "DELETE FROM outbox WHERE id = ? AND (delivered & ?) = ?");
  for (const auto id : ids) {
    mark.bind(1, std::int64_t{1} << uplink).bind(2, id);
    mark.step();
    mark.reset();
    done.bind(1, id).bind(2, all).bind(3, all);
    done.step();
    done.reset();
  }
}

void store::write_telemetry_marks() {
  for (std::size_t uplink = 0; uplink < telemetry_marks_.size(); ++uplink) {
    if (!telemetry_marks_[uplink].empty()) set_delivered(uplink, telemetry_marks_[uplink]);
    marks_in_transaction_[uplink] = telemetry_marks_[uplink].size();
  }
}

void store::commit_telemetry_marks() {
  exec("BEGIN");
  try {
    write_telemetry_marks();
    exec("COMMIT");
    marks_written();
  } catch (...) {
    rollback();
    throw;
  }
}

void store::marks_written() {
  for (std::size_t uplink = 0; uplink < telemetry_marks_.size(); ++uplink) {
    auto& ids = telemetry_marks_[uplink];
    ids.erase(ids.begin(),
              ids.begin() + static_cast<std::ptrdiff_t>(std::min(marks_in_transaction_[uplink], ids.size())));
    marks_in_transaction_[uplink] = 0;
  }
}

std::array<std::size_t, 3> store::outbox_depth_by_lane() {
  std::array<std::size_t, 3> depth{};
  statement s(*this, "SELECT lane, COUNT(*) FROM outbox WHERE lane < 3 GROUP BY lane");
  while (s.step()) {
    const auto l = s.int64(0);
    if (l >= 0 && l < 3) depth[static_cast<std::size_t>(l)] = static_cast<std::size_t>(s.int64(1));
  }
  // Telemetry every uplink has delivered, its marks still in memory, is not waiting.
  std::map<std::int64_t, std::int64_t> marked;
  for (std::size_t uplink = 0; uplink < telemetry_marks_.size(); ++uplink) {
    for (const auto id : telemetry_marks_[uplink]) marked[id] |= std::int64_t{1} << uplink;
  }
  if (!marked.empty()) {
    const std::int64_t all = (std::int64_t{1} << uplinks_) - 1;
    statement row(*this, "SELECT delivered FROM outbox WHERE id = ? AND lane = 2");
    auto& telemetry = depth[static_cast<std::size_t>(lane::telemetry)];
    for (const auto& [id, bits] : marked) {
      row.bind(1, id);
      if (row.step() && ((row.int64(0) | bits) & all) == all && telemetry > 0) --telemetry;
      row.reset();
    }
  }
  return depth;
}

std::size_t store::outbox_depth() {
  const auto lanes = outbox_depth_by_lane();
  return lanes[0] + lanes[1] + lanes[2];
}

std::vector<store::backlog> store::outbox_backlog() {
  std::vector<backlog> out(uplinks_);
  // One pass over the outbox for every uplink (a filter on the delivery bits cannot use the lane
  // index, so each pass reads every row): per uplink, how many it has not delivered and the oldest.
  std::string columns;
  for (unsigned uplink = 0; uplink < uplinks_; ++uplink) {
    const auto bit = std::int64_t{1} << uplink;
    columns += fmt::format(
        ", SUM((delivered & {0}) = 0), MIN(CASE WHEN (delivered & {0}) = 0 THEN created_ms END)", bit);
  }
  const auto sql = fmt::format("SELECT lane{} FROM outbox WHERE lane < 3 GROUP BY lane", columns);
  statement s(*this, sql.c_str());
  while (s.step()) {
    const auto l = s.int64(0);
    if (l < 0 || l >= 3) continue;
    const auto lane_at = static_cast<std::size_t>(l);
    for (unsigned uplink = 0; uplink < uplinks_; ++uplink) {
      const int col = 1 + 2 * static_cast<int>(uplink);
      out[uplink].waiting[lane_at] = static_cast<std::size_t>(s.int64(col));
      if (!s.is_null(col + 1))
        out[uplink].oldest[lane_at] = clock::time_point(std::chrono::milliseconds(s.int64(col + 1)));
    }
  }
  for (unsigned uplink = 0; uplink < uplinks_; ++uplink) {
    // Telemetry this uplink has delivered, its marks still in memory, is not waiting for it (the
    // oldest such item is left as read: it is written as delivered with the next flush).
    auto& telemetry = out[uplink].waiting[static_cast<std::size_t>(lane::telemetry)];
    if (uplink < telemetry_marks_.size() && !telemetry_marks_[uplink].empty()) {
      statement row(*this, "SELECT 1 FROM outbox WHERE id = ? AND lane = 2 AND (delivered & ?2) = 0");
      for (const auto id : telemetry_marks_[uplink]) {
        row.bind(1, id);
        row.bind(2, std::int64_t{1} << uplink);
        if (row.step() && telemetry > 0) --telemetry;
        row.reset();
      }
    }
    if (telemetry == 0) out[uplink].oldest[static_cast<std::size_t>(lane::telemetry)].reset();
  }
  return out;
}

}  // namespace firegate
