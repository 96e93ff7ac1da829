#pragma once
// Linkage outputs (a sounder, a power-cut relay) held by the open alarms that the site's
// [[linkage]] entries match. An output belongs to no single alarm: it stays at its linkage's value
// while any matching alarm is open, and its reset_value is written only when the last one ends.
// Two linkages on one output hold it together. Pure logic: the site's linkages and the engine's
// open alarms in, the writes to make out; the application carries them out (docs/alarms.md).

#include "config/config.hpp"
#include "domain/event.hpp"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace firegate {

/// Thread safety: none; owned and called by the application on its loop.
class linkage_outputs {
 public:
  /// A write to make: `value` to the output device's writable.
  struct action {
    std::string device, write;
    double value{0};
    /// Read the output first and write only when it differs (a restart, an escalation).
    bool only_if_differs{false};
    bool reset{false};                  ///< the output is released (reset_value)
    bool at_start{false};               ///< asserted or released by restore()
    std::vector<std::string> linkages;  ///< the linkages holding it (or that held it, for a reset)
    std::string alarm_id;               ///< the alarm that caused it: the first holder, or the last to end
    std::string why;                    ///< a sentence for the event and the log
  };
  /// An open alarm holding an output.
  struct holder {
    std::string alarm_id, device, rule;
    event_kind kind{event_kind::fire_alarm};
  };

  /// Recomputes which outputs are held from what is open now (the engine's open alarms, after
  /// `cause` was decided) and returns the writes the changes need: an output newly held gets its
  /// value, one that no alarm holds any more its reset_value (when any of its linkages has one).
  /// An output already held is re-asserted, writing only if it reads back different, when a new alarm
  /// joins its holders, when one of them escalates, and when it is in doubt. `cause` may be null (a
  /// reload, a device back online).
  std::vector<action> update(const std::vector<config::linkage_config>& linkages,
                             const std::vector<open_alarm>& open, const event* cause);
  /// After a restart: the outputs the restored alarms hold, each asserted if it reads back different,
  /// and every other output with a reset_value released if it reads back different.
  std::vector<action> restore(const std::vector<config::linkage_config>& linkages,
                              const std::vector<open_alarm>& open);
  /// A write's outcome (or a technician's forced write, `ok` false and `value` NaN). An output held
  /// whose last write failed is in doubt and asserted again at the next update (a device back
  /// online, any alarm change); one switched by hand is asserted again when a new alarm joins its
  /// holders or one of them escalates.
  /// Returns whether the output was in doubt before this outcome.
  bool written(const std::string& device, const std::string& write, double value, bool ok);
  /// The open alarms holding `device`'s writable `write`; empty when it is free.
  std::vector<holder> holders(const std::string& device, const std::string& write) const;
  /// Every held output as (device, write) with its holders, for status.
  const auto& held() const { return held_; }

  /// Whether an open alarm is one that `l` matches (its category, device and rule; never a test).
  static bool matches(const config::linkage_config& l, const open_alarm& a);

  struct output {
    double value{0};
    std::optional<double> reset_value;
    std::vector<std::string> linkages;
    std::vector<holder> holders;
    bool in_doubt{false};  ///< its last write failed: asserted again at any update
    bool forced{false};    ///< switched by hand: asserted again on a new alarm or an escalation only
  };

 private:
  using key = std::pair<std::string, std::string>;  // (device, write)
  static std::map<key, output> compute(const std::vector<config::linkage_config>& linkages,
                                       const std::vector<open_alarm>& open);
  std::map<key, output> held_;
};

}  // namespace firegate
