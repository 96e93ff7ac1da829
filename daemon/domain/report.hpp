#pragma once
// Report strategies: which polls of a point the platform is sent as telemetry (docs/uplink.md,
// "Report strategies"). Every poll is stored and every alarm decided whatever a point's strategy;
// this only thins what goes up a paid data link. Plain data and a pure filter, no I/O.

#include "domain/reading.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace firegate {

/// How one point of one device is reported: set per point in its profile ([[points]] report),
/// overridable per device ([devices.report.<point>]). The default is every poll.
struct report_policy {
  enum class mode : std::uint8_t {
    every_poll,  ///< every value read (the backlog after an outage is then complete)
    change,      ///< a value that differs from the last one reported by more than the deadband
  };
  mode on{mode::every_poll};
  /// For `change`: how far a value must move from the last one reported, in the point's unit
  /// (0: any difference), or with `deadband_percent` in percent of that value's magnitude.
  double deadband{0};
  bool deadband_percent{false};
  /// At most one report in this long (0: no limit); a change held back goes with the first poll
  /// after it, if it still stands.
  std::chrono::seconds at_most_every{0};
  /// At least one report in this long (0: only changes), at whole multiples of it since the epoch
  /// (on the hour for 3600 s), so a site's keep-alive values travel together in one message.
  std::chrono::seconds at_least_every{0};
  bool operator==(const report_policy&) const = default;
};

/// One policy a point, in the order of the device's model's points; empty: each point's model
/// default. Made once per device when the configuration is loaded.
using report_policies = std::vector<report_policy>;

/// "every poll", "change > 0.5 at most every 10 s, at least every 3600 s": for the tools.
std::string to_string(const report_policy& p);

/// Decides, poll after poll in time order, which readings are reported. Remembers the last value
/// reported of each device's point. A change of quality (good to bad and back) is always reported at
/// once, and so is the first reading of a point.
class report_filter {
 public:
  /// Whether `r` is reported under `p`; remembers it when it is (but for every poll without limits,
  /// which needs nothing remembered).
  bool decide(const reading& r, const report_policy& p);
  /// Forgets every point: the next reading of each is reported (after a reload).
  void clear() { last_.clear(); }
  std::size_t points() const;

 private:
  struct last_report {
    std::string point;
    double value{0};
    quality q{quality::good};
    clock::time_point time;
  };
  std::unordered_map<std::string, std::vector<last_report>> last_;  ///< by device
};

}  // namespace firegate
