#pragma once
// Report strategies in the configuration: a profile point's `report` table and a site's per-device
// [devices.report.<point>] overrides (docs/profiles.md, "Report strategies"). As strict as the rest:
// every error names the key and the fix.

#include "config/config_node.hpp"
#include "domain/catalogue.hpp"
#include "domain/report.hpp"

namespace firegate::config {

/// The keys of `n` (on, deadband, deadband_percent, at_most_every_s, at_least_every_s) over `p`;
/// with `on`, in place of `p` (a whole strategy). False when one has an error (recorded on `n`).
/// Does not call n.finish().
bool parse_report_keys(config_node& n, report_policy& p);

/// The optional `report` table of a profile (its default) or of a profile's point (over that
/// default), into `p`. False when it has an error.
bool parse_point_report(config_node& point, report_policy& p);

/// A device's optional `report` table (one sub-table a point, or "*" for every point, the named
/// ones over it), over its model's policies. Null when the device has no such table or it has an
/// error (recorded), so the device shares its model's policies.
std::shared_ptr<const report_policies> device_reports(config_node& device, const model_description& model);

}  // namespace firegate::config
