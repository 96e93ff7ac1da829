#pragma once
// The daemon's recent log lines, kept in memory for the platform's `logs` command and
// `diagnostics` (docs/uplink.md, "Commands"): an spdlog sink beside stderr, bounded in bytes so its
// memory is fixed whatever the lines' lengths (spdlog's own ringbuffer_sink counts lines, each with
// a buffer of its own). Thread safe: every thread logs into it.

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace firegate {

class log_ring final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  /// A line as kept: its time, level and text (the event's own, as firegate's lines are).
  struct line {
    std::chrono::system_clock::time_point time;
    spdlog::level::level_enum level{spdlog::level::info};
    std::string text;
  };
  /// What a `logs` command asks for.
  struct query {
    std::size_t lines{200};                                      ///< the newest this many at most
    std::optional<std::chrono::system_clock::time_point> since;  ///< none older than this
    spdlog::level::level_enum level{spdlog::level::info};        ///< at this level or above
    std::size_t max_bytes{65536};                                ///< the newest lines within this many bytes
  };
  explicit log_ring(std::size_t max_bytes = 256 * 1024) : max_bytes_(max_bytes) {}

  /// The lines `q` asks for, oldest first, each "TIME LEVEL TEXT"; `dropped` is set to how many
  /// lines matched but were left out by the line or byte bound (the oldest of them).
  std::vector<std::string> select(const query& q, std::size_t& dropped);
  /// Lines forgotten to keep within the bound since the start.
  std::size_t forgotten();

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  std::size_t max_bytes_;
  std::size_t bytes_{0};
  std::size_t forgotten_{0};
  std::deque<line> lines_;
};

/// The ring setup_logging installed (null before, and in tools that log without it).
std::shared_ptr<log_ring> recent_log();
void set_recent_log(std::shared_ptr<log_ring> ring);

/// "debug", "info", "warn", "error", "critical": the level, else none.
std::optional<spdlog::level::level_enum> parse_log_level(const std::string& name);

}  // namespace firegate
