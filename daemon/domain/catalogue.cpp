#include "domain/catalogue.hpp"

#include <algorithm>

namespace firegate {

std::optional<std::int64_t> label_key(double value) {
  if (!(value >= -9.2e18 && value <= 9.2e18) ||
      value != static_cast<double>(static_cast<std::int64_t>(value)))
    return std::nullopt;
  return static_cast<std::int64_t>(value);
}

const point_description* device_description::point(std::string_view point_name) const {
  const auto& all = points();
  const auto it = std::find_if(all.begin(), all.end(), [&](const auto& p) { return p.name == point_name; });
  return it == all.end() ? nullptr : &*it;
}

const alarm_rule* device_description::profile_rule(std::string_view rule_name) const {
  if (!profile_rules) return nullptr;
  const auto it = std::find_if(profile_rules->begin(), profile_rules->end(),
                               [&](const alarm_rule& r) { return r.name == rule_name; });
  return it == profile_rules->end() ? nullptr : &*it;
}

const report_policy& device_description::report(std::string_view point_name) const {
  static const report_policy every_poll;
  const auto* p = point(point_name);
  if (p == nullptr) return every_poll;
  const auto i = static_cast<std::size_t>(p - points().data());
  return reports && i < reports->size() ? (*reports)[i] : p->report;
}

std::string device_description::label(std::string_view point_name, double value) const {
  const auto* p = point(point_name);
  const auto key = label_key(value);
  if (p == nullptr || !key) return {};
  const auto it = p->labels.find(*key);
  return it == p->labels.end() ? std::string() : it->second;
}

const annotation_table& device_description::annotations_for(std::string_view uplink) const {
  static const annotation_table none;
  const auto it = model->annotations.find(uplink);
  return it == model->annotations.end() ? none : it->second;
}

device_description describe(std::string name, std::shared_ptr<const model_description> model,
                            std::shared_ptr<const std::vector<alarm_rule>> rules,
                            std::shared_ptr<const report_policies> reports,
                            std::shared_ptr<const std::vector<alarm_rule>> profile_rules) {
  static const auto no_model = std::make_shared<const model_description>();
  static const auto no_rules = std::make_shared<const std::vector<alarm_rule>>();
  return {std::move(name), model ? std::move(model) : no_model, rules ? std::move(rules) : no_rules,
          std::move(reports), std::move(profile_rules)};
}

device_catalogue::device_catalogue(std::vector<device_description> devices) : devices_(std::move(devices)) {
  std::stable_sort(devices_.begin(), devices_.end(),
                   [](const auto& a, const auto& b) { return a.name < b.name; });
}

const device_description* device_catalogue::find(std::string_view device) const {
  const auto it = std::lower_bound(devices_.begin(), devices_.end(), device,
                                   [](const auto& d, std::string_view name) { return d.name < name; });
  return it != devices_.end() && it->name == device ? &*it : nullptr;
}

std::string device_catalogue::label(std::string_view device, std::string_view point, double value) const {
  const auto* d = find(device);
  return d ? d->label(point, value) : std::string();
}

}  // namespace firegate
