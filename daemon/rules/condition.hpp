#pragma once
// The conditions an alarm rule watches, evaluated sample by sample with no I/O (issue 5): a high or
// low threshold with hysteresis, a value in a set (a detector's state enum), a bit of a status word,
// a rate of rise, an unusable value (a probe open or shorted), and stale data. Each is debounced:
// held for a time and/or a number of samples before it counts.
//
// Durations are measured on a monotonic clock passed in by the caller (injected in tests), never on
// the readings' wall-clock times: a clock set back or forward by NTP or a technician neither delays
// nor hastens an alarm.

#include "domain/reading.hpp"
#include "domain/rule.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace firegate::rules {

using mono = std::chrono::steady_clock;

/// What a sample or a tick did to the debounced state.
enum class change : std::uint8_t { none, raised, cleared };

/// One condition on one point of one device.
/// Thread safety: none; used on the loop.
class condition {
 public:
  explicit condition(condition_spec spec) : spec_(std::make_shared<const condition_spec>(std::move(spec))) {}
  /// A spec shared with others (the alarm engine's: one copy per profile rule, not per device).
  explicit condition(std::shared_ptr<const condition_spec> spec) : spec_(std::move(spec)) {}

  /// A reading of the point, taken at `now` on the monotonic clock.
  change on_sample(double value, quality q, mono::time_point now);
  /// Time passing with no reading: completes a time-only debounce, detects stale data.
  change on_tick(mono::time_point now);

  bool active() const { return active_; }
  /// Marks it active without a change: an alarm still open at the last stop, restored at start.
  void restore_active(double value) {
    active_ = true;
    value_ = value;
    pending_since_.reset();
    pending_samples_ = 0;
  }
  /// The value that last made it hold or clear, and for rate_of_rise the rate (a minute).
  double value() const { return value_; }
  const condition_spec& spec() const { return *spec_; }
  /// The same spec, held elsewhere (a reload's new copy of an unchanged rule): the state stays.
  void rebind(std::shared_ptr<const condition_spec> spec) { spec_ = std::move(spec); }

 private:
  /// The undebounced condition for this sample; nullopt when it cannot be decided (rate of rise
  /// without enough history), which leaves the state as it is.
  std::optional<bool> holds(double value, quality q, mono::time_point now);
  change settle(bool holds_now, mono::time_point now);

  std::shared_ptr<const condition_spec> spec_;
  bool active_{false};
  double value_{0};
  std::optional<mono::time_point> pending_since_;  ///< raw condition true since, not yet debounced
  unsigned pending_samples_{0};
  std::optional<mono::time_point> last_good_;
  /// rate_of_rise: samples in the window, oldest first. A vector, not a deque: an empty deque
  /// allocates (576 bytes in libstdc++), and most conditions keep no history.
  std::vector<std::pair<mono::time_point, double>> history_;
};

}  // namespace firegate::rules
