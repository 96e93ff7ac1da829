#pragma once
// The conditions an alarm rule watches, evaluated sample by sample with no I/O (issue 5): a high or
// low threshold with hysteresis, a value in a set (a detector's state enum), a bit of a status word,
// a rate of rise, an unusable value (a probe open or shorted), and stale data. Each is debounced:
// held for a time and/or a number of samples before it counts.
//
// Durations are measured on a monotonic clock passed in by the caller (injected in tests), never on
// the readings' wall-clock times: a clock set back or forward by NTP or a technician neither delays
// nor hastens an alarm.

#include "reading.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

namespace firegate::rules {

using mono = std::chrono::steady_clock;

enum class condition_kind : std::uint8_t {
  high,          ///< value ≥ set; clears below `clear`
  low,           ///< value ≤ set; clears above `clear`
  equals,        ///< value is one of `values` (a state enum: SD-1 state 1 = fire)
  bit,           ///< bit `bit` of the value (a status word) is set
  rate_of_rise,  ///< the value rose by at least `per_minute` a minute over `window`
  bad_quality,   ///< the device reported a value that cannot be used (probe open, out of range)
  stale,         ///< no good reading for `stale_after`
};

std::string_view to_string(condition_kind k);

struct condition_spec {
  condition_kind kind{condition_kind::high};
  double set{0};
  /// high/low: where an active condition ends; equal to `set` for no hysteresis.
  double clear{0};
  std::vector<double> values;  ///< equals
  unsigned bit{0};             ///< bit (0 = least significant)
  double per_minute{0};        ///< rate_of_rise
  std::chrono::milliseconds window{std::chrono::seconds(60)};  ///< rate_of_rise
  /// rate_of_rise: the samples in the window must span at least this (one sample is no rate).
  std::chrono::milliseconds min_span{std::chrono::seconds(10)};
  std::chrono::milliseconds stale_after{std::chrono::seconds(60)};  ///< stale
  /// Debounce: the condition must hold this long AND for this many consecutive samples.
  std::chrono::milliseconds delay{0};
  unsigned samples{1};
};

/// What a sample or a tick did to the debounced state.
enum class change : std::uint8_t { none, raised, cleared };

/// One condition on one point of one device.
/// Thread safety: none; used on the loop.
class condition {
 public:
  explicit condition(condition_spec spec) : spec_(std::move(spec)) {}

  /// A reading of the point, taken at `now` on the monotonic clock.
  change on_sample(double value, quality q, mono::time_point now);
  /// Time passing with no reading: completes a time-only debounce, detects stale data.
  change on_tick(mono::time_point now);

  bool active() const { return active_; }
  /// The value that last made it hold or clear, and for rate_of_rise the rate (a minute).
  double value() const { return value_; }
  const condition_spec& spec() const { return spec_; }

 private:
  /// The undebounced condition for this sample; nullopt when it cannot be decided (rate of rise
  /// without enough history), which leaves the state as it is.
  std::optional<bool> holds(double value, quality q, mono::time_point now);
  change settle(bool holds_now, mono::time_point now);

  condition_spec spec_;
  bool active_{false};
  double value_{0};
  std::optional<mono::time_point> pending_since_;  ///< raw condition true since, not yet debounced
  unsigned pending_samples_{0};
  std::optional<mono::time_point> last_good_;
  std::deque<std::pair<mono::time_point, double>> history_;  ///< rate_of_rise: samples in the window
};

}  // namespace firegate::rules
