#pragma once
// Parses alarm rules: a profile's [[rules]] (what a device type can alarm on, with its defaults)
// and a site's per-device overrides ([devices.rules.<name>]: set, clear, delay_ms, samples,
// enabled), and what a profile tells the uplinks (its GB/T 26875.3 component types). As strict as the rest of
// the configuration: every error names the key and the fix.

#include "config/config.hpp"
#include "config/config_node.hpp"
#include "domain/rule.hpp"

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace firegate::config {

/// One [[rules]] entry. `points` are the profile's point names (a rule must watch one of them);
/// `names` collects rule names to refuse duplicates.
std::optional<alarm_rule> parse_alarm_rule(config_node& n, const std::set<std::string, std::less<>>& points,
                                           std::set<std::string, std::less<>>& names);

/// Every [[rules]] entry of a profile's root table, appended to `out`; false when any has an error
/// (recorded on its node).
bool parse_alarm_rules(config_node& root, const std::set<std::string, std::less<>>& points,
                       std::vector<alarm_rule>& out);

/// What a profile says to the uplinks, into `out` by uplink. Today one table: [gb26875], whose
/// component_type (the device's GB/T 26875.3 component type, 1–255) becomes "component_type" and
/// whose points (point name = component type, for points that are another kind of component; 0
/// for a point not sent to the centre, such as a setting) become "point.<name>".
/// False when it has an error (recorded). Absent: `out` gets nothing.
bool parse_uplink_annotations(config_node& root, const std::set<std::string, std::less<>>& points,
                              std::map<std::string, annotation_table, std::less<>>& out);

/// Applies a device's [devices.rules] table (one sub-table a rule, by name) to a copy of its
/// profile's rules.
void apply_rule_overrides(config_node& overrides, std::vector<alarm_rule>& rules);

}  // namespace firegate::config
