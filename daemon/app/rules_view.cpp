#include "app/rules_view.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace firegate {
namespace {

const reading* find_reading(const std::vector<reading>& latest, const std::string& point) {
  if (point.empty()) return nullptr;
  auto it = std::find_if(latest.begin(), latest.end(),
                         [&](const reading& r) { return r.point == point && r.q == quality::good; });
  return it == latest.end() ? nullptr : &*it;
}

std::string number(double v, const std::string& unit) {
  return fmt::format("{:g}{}{}", v, unit.empty() ? "" : " ", unit);
}

}  // namespace

nlohmann::json rules_in_force(const device_description& d, const std::vector<reading>& latest) {
  auto out = nlohmann::json::array();
  for (const auto& r : *d.rules) {
    const auto& c = r.condition;
    const bool threshold = c.kind == condition_kind::high || c.kind == condition_kind::low;
    const auto* p = d.point(r.point);
    const std::string unit = p != nullptr ? p->unit : "";
    nlohmann::json j{{"name", r.name},
                     {"point", r.point},
                     {"when", to_string(c.kind)},
                     {"category", to_string(r.category)},
                     {"enabled", r.enabled}};
    const auto* base = d.profile_rule(r.name);
    const bool site = base != nullptr && !(*base == r);
    j["from"] = site ? "site" : "profile";
    if (threshold) {
      j["set"] = c.set;
      j["clear"] = c.clear;
      if (site && base->condition.set != c.set) j["profile_set"] = base->condition.set;
    }
    const auto* value = find_reading(latest, r.point);
    if (value != nullptr) j["value"] = value->value;
    const auto* own = find_reading(latest, r.device_alarm);
    const auto* own_setting = find_reading(latest, r.device_setting);
    if (!r.device_alarm.empty())
      j["device_alarm"] = {{"point", r.device_alarm}, {"value", own ? nlohmann::json(own->value) : nullptr}};
    if (!r.device_setting.empty())
      j["device_setting"] = {{"point", r.device_setting},
                             {"value", own_setting ? nlohmann::json(own_setting->value) : nullptr}};
    // Why the device's own output and the gateway's decision may differ: their settings.
    if (threshold && value != nullptr && own != nullptr) {
      const bool holds = c.kind == condition_kind::high ? value->value >= c.set : value->value <= c.set;
      const bool device_on = own->value != 0;
      const std::string setting_text =
          own_setting != nullptr ? fmt::format(" at its own setting {}", number(own_setting->value, unit))
                                 : "";
      const std::string rule_text =
          fmt::format("the gateway's rule is set at {} ({})", number(c.set, unit),
                      site ? fmt::format("the site's; the profile's is {}", number(base->condition.set, unit))
                           : std::string("the profile's"));
      if (!r.enabled) {
        j["note"] = fmt::format(
            "the rule is switched off at this site: only the device's own output ({}) says "
            "anything of this condition",
            r.device_alarm);
      } else if (device_on && !holds) {
        j["note"] = fmt::format(
            "the device's own alarm is on ({} = 1{}) while {} and the reading is {}: the gateway raises "
            "nothing until it reaches its setting. Set the device and the rule alike (the device's "
            "setting register, or [devices.rules.{}] set)",
            r.device_alarm, setting_text, rule_text, number(value->value, unit), r.name);
      } else if (!device_on && holds) {
        j["note"] = fmt::format(
            "the gateway's rule holds (the reading {} is past {}) while the device's own alarm is off ({} = "
            "0{}): the device is set further out than the rule",
            number(value->value, unit), number(c.set, unit), r.device_alarm, setting_text);
      } else if (own_setting != nullptr && own_setting->value != c.set) {
        j["note"] = fmt::format(
            "they agree now, but the device's own setting ({}) differs from the rule's ({}): between the two "
            "they will not",
            number(own_setting->value, unit), number(c.set, unit));
      }
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace firegate
