#pragma once
// What `firegatectl device NAME` shows of a device's alarm rules: each rule in force beside the
// value of the point it watches, where its setting comes from (the site's override or the
// profile), and, where the profile names them, the device's own alarm output and setting for the
// same condition, with a note when the device and the gateway disagree and why.

#include "domain/catalogue.hpp"
#include "domain/reading.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace firegate {

/// One entry a rule: name, point, when, category, enabled, set/clear (high and low), `from`
/// ("site" or "profile") with `profile_set` when the site changed it, `value` (the point's last
/// reading, when there is one), `device_alarm` and `device_setting` ({point, value}) and `note`.
nlohmann::json rules_in_force(const device_description& d, const std::vector<reading>& latest);

}  // namespace firegate
