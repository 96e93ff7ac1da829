#pragma once
// What an alarm rule is, as profiles and site files state it (docs/profiles.md, "Alarm rules"):
// plain data with no behaviour, shared by the configuration parser and the rules engine.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace firegate {

enum class condition_kind : std::uint8_t {
  high,          ///< value ≥ set; clears at `clear` or below
  low,           ///< value ≤ set; clears at `clear` or above
  equals,        ///< value is one of `values` (a state enum: SD-1 state 1 = fire)
  bit,           ///< bit `bit` of the value (a status word) is set
  rate_of_rise,  ///< the value rose by at least `per_minute` a minute over `window`
  bad_quality,   ///< the device reported a value that cannot be used (probe open, out of range)
  stale,         ///< no good reading for `stale_after`
};

inline constexpr std::string_view condition_kind_names[] = {"high",         "low",         "equals", "bit",
                                                            "rate_of_rise", "bad_quality", "stale"};
inline std::string_view to_string(condition_kind k) {
  return condition_kind_names[static_cast<std::size_t>(k)];
}

struct condition_spec {
  condition_kind kind{condition_kind::high};
  double set{0};
  /// high/low: where an active condition ends; equal to `set` for no hysteresis.
  double clear{0};
  std::vector<double> values;                                  ///< equals
  unsigned bit{0};                                             ///< bit (0 = least significant)
  double per_minute{0};                                        ///< rate_of_rise
  std::chrono::milliseconds window{std::chrono::seconds(60)};  ///< rate_of_rise
  /// rate_of_rise: the samples in the window must span at least this (one sample is no rate).
  std::chrono::milliseconds min_span{std::chrono::seconds(10)};
  std::chrono::milliseconds stale_after{std::chrono::seconds(60)};  ///< stale
  /// Debounce: the condition must hold this long AND for this many consecutive samples.
  std::chrono::milliseconds delay{0};
  unsigned samples{1};
  bool operator==(const condition_spec&) const = default;
};

/// GB/T 26875.3-aligned: a fire alarm, a supervisory condition (pre-alarm, hidden danger) or a fault.
enum class alarm_category : std::uint8_t { fire, supervisory, fault };

inline constexpr std::string_view alarm_category_names[] = {"fire", "supervisory", "fault"};
inline std::string_view to_string(alarm_category c) {
  return alarm_category_names[static_cast<std::size_t>(c)];
}

/// One rule of a profile, with a device's overrides applied.
struct alarm_rule {
  std::string name;   ///< unique in its profile, such as "leakage"
  std::string point;  ///< the point it watches
  alarm_category category{alarm_category::fault};
  /// A latched alarm stays until acknowledged, even after its condition clears (fire by default).
  bool latch{false};
  bool enabled{true};
  std::string text;  ///< what the alert says, such as "residual current over its alarm setting"
  /// The device maker's own code for this alarm, where it has one (an electrical-fire platform's
  /// 201 for leakage), carried on the alarm's events for platforms that key on it.
  std::optional<std::int64_t> code;
  condition_spec condition;
  /// The range a site may set `set` to (the device's own setting range, such as 20–1000 mA).
  std::optional<double> set_min, set_max;
  /// Points whose values go with the alarm as its evidence, from the same poll that decided it: a
  /// gas detector's concentration and its own alarm setting behind its state register.
  std::vector<std::string> evidence;
  /// The device's own alarm output for this condition (a status bit) and its own setting, where the
  /// profile names them: firegatectl device shows them beside the rule in force, since a device set
  /// apart from the site's rule alarms by itself at another value.
  std::string device_alarm, device_setting;
  bool operator==(const alarm_rule&) const = default;
};

/// Where the system clock's state is read ([alarms] clock_source, docs/clock.md).
enum class clock_source : std::uint8_t {
  automatic,  ///< the kernel (adjtimex), and timedated once a system call filter denies adjtimex
  kernel,     ///< adjtimex only
  timedated,  ///< systemd-timedated over the system bus only
};

/// How the gateway follows alarms once raised ([alarms] in the site file).
struct alarm_policy {
  /// An unacknowledged fire alarm is raised again this often; zero: never.
  std::chrono::seconds escalate_after{std::chrono::minutes(5)};
  /// False alarms of one device in a day above which its alerts say it needs a handling plan.
  unsigned false_alarm_limit{5};
  /// The longest a device may be shielded, from the platform or firegatectl.
  std::chrono::minutes shield_max{std::chrono::hours(24)};
  /// The system clock unsynchronised this long is a clock_unsynchronised fault; zero: never.
  std::chrono::seconds clock_fault_after{std::chrono::hours(1)};
  clock_source clock{clock_source::automatic};
  /// How often the clock's state is read.
  std::chrono::seconds clock_check{std::chrono::minutes(1)};
  bool operator==(const alarm_policy&) const = default;
};

}  // namespace firegate
