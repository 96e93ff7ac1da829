#include "log_ring.hpp"

#include "domain/time_text.hpp"

#include <fmt/format.h>

namespace firegate {

namespace {
/// Kept per line beyond its text: the deque's slot and the string's own.
constexpr std::size_t line_overhead = sizeof(log_ring::line);

std::mutex installed_mutex;
std::shared_ptr<log_ring> installed;
}  // namespace

void log_ring::sink_it_(const spdlog::details::log_msg& msg) {
  line l{msg.time, msg.level, std::string(msg.payload.data(), msg.payload.size())};
  bytes_ += l.text.size() + line_overhead;
  lines_.push_back(std::move(l));
  while (bytes_ > max_bytes_ && lines_.size() > 1) {
    bytes_ -= lines_.front().text.size() + line_overhead;
    lines_.pop_front();
    ++forgotten_;
  }
}

std::vector<std::string> log_ring::select(const query& q, std::size_t& dropped) {
  // The newest lines first, copied under the lock (every logging thread waits on it) and written
  // out after; once a bound is reached, older lines are only counted: the result has no gaps.
  std::vector<line> kept;
  dropped = 0;
  {
    const std::lock_guard lock(mutex_);
    std::size_t bytes = 0;
    bool full = false;
    for (auto it = lines_.rbegin(); it != lines_.rend(); ++it) {
      if (q.since && it->time < *q.since) break;
      if (it->level < q.level) continue;
      // "TIME LEVEL TEXT\n": the time is 29 characters (milliseconds and the offset).
      const auto size = 29 + 1 + spdlog::level::to_string_view(it->level).size() + 1 + it->text.size() + 1;
      if (full || kept.size() >= q.lines || bytes + size > q.max_bytes) {
        full = true;
        ++dropped;
        continue;
      }
      bytes += size;
      kept.push_back(*it);
    }
  }
  std::vector<std::string> out;
  out.reserve(kept.size());
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    out.push_back(
        fmt::format("{} {} {}", iso8601(it->time), spdlog::level::to_string_view(it->level), it->text));
  }
  return out;
}

std::size_t log_ring::forgotten() {
  const std::lock_guard lock(mutex_);
  return forgotten_;
}

std::shared_ptr<log_ring> recent_log() {
  const std::lock_guard lock(installed_mutex);
  return installed;
}

void set_recent_log(std::shared_ptr<log_ring> r) {
  const std::lock_guard lock(installed_mutex);
  installed = std::move(r);
}

std::optional<spdlog::level::level_enum> parse_log_level(const std::string& name) {
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn" || name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "critical") return spdlog::level::critical;
  return std::nullopt;
}

}  // namespace firegate
