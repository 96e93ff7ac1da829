#pragma once
// The device catalogue: what each configured device is, as its profile describes it and the site
// file adjusts it (its model, its points and what their values mean, what can be written to it,
// its alarm rules with the site's overrides, and what the profile tells each uplink about it).
// Plain data, made by the drivers from their profiles when the configuration is loaded, and read
// by everything else: the application hands the alarm engine the rules, labels events and checks
// linkage writes with it, the control socket shows the model and the writes, and an uplink reads
// its own annotations. Nothing here knows a protocol.

#include "domain/report.hpp"
#include "domain/rule.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace firegate {

/// One point of a device.
struct point_description {
  std::string name;  ///< "state", "leakage"
  std::string unit;  ///< "", "mA", "°C"
  /// Values with a name of their own (a state enum: 1 = "fire"), by whole value.
  std::map<std::int64_t, std::string> labels;
  /// How the profile reports it to the platform (a device may override it).
  report_policy report;
  bool operator==(const point_description&) const = default;
};

/// Numbers a profile gives one uplink about its devices, by key. The catalogue does not know what
/// the keys mean; the uplink that reads them does (docs/gb26875.md: "component_type" for the
/// device, "point.<name>" for a point that is another kind of component).
using annotation_table = std::map<std::string, std::int64_t, std::less<>>;

/// The label key of a value: the value itself when it is a whole number an int64 holds, else
/// nullopt (a float32 point or a message may carry 1e300 or NaN; casting those is undefined).
std::optional<std::int64_t> label_key(double value);

/// What a device model (a profile) is: shared by every device of that model.
struct model_description {
  std::string name;  ///< the profile's name ("SD-1"); empty for a device without one
  std::vector<point_description> points;
  std::vector<std::string> writes;  ///< the names of its profile's [[writes]]
  /// By uplink ("gb26875"), what the profile says to that uplink.
  std::map<std::string, annotation_table, std::less<>> annotations;
};

struct device_description {
  std::string name;  ///< the device's name in the site file
  /// Its model's description, shared with every device of the model (never null).
  std::shared_ptr<const model_description> model;
  /// Its profile's rules with the site's overrides, shared with its driver's settings (never null).
  std::shared_ptr<const std::vector<alarm_rule>> rules;
  /// Its report strategies with the site's overrides ([devices.report]), one a model point; null:
  /// the model's own.
  std::shared_ptr<const report_policies> reports;
  /// The rules as its profile gives them, before the site's overrides (null: not known); what
  /// `firegatectl config show` and `device` compare `rules` with.
  std::shared_ptr<const std::vector<alarm_rule>> profile_rules;

  const std::string& model_name() const { return model->name; }
  const std::vector<point_description>& points() const { return model->points; }
  const std::vector<std::string>& writes() const { return model->writes; }
  const point_description* point(std::string_view point_name) const;
  /// The rule of that name as its profile gives it (before the site's overrides); null when the
  /// profile's rules are not known or have none of that name.
  const alarm_rule* profile_rule(std::string_view rule_name) const;
  /// How `point_name` is reported: the site's override, else the profile's; every poll for a point
  /// the model does not describe.
  const report_policy& report(std::string_view point_name) const;
  /// What `value` of `point_name` means where the profile names it ("fire"); empty otherwise.
  std::string label(std::string_view point_name, double value) const;
  /// The annotations for `uplink`; empty when the profile gives none.
  const annotation_table& annotations_for(std::string_view uplink) const;
};

/// A description for a device: its model's (nullptr: a model with nothing described) and its rules.
device_description describe(std::string name, std::shared_ptr<const model_description> model,
                            std::shared_ptr<const std::vector<alarm_rule>> rules,
                            std::shared_ptr<const report_policies> reports = nullptr,
                            std::shared_ptr<const std::vector<alarm_rule>> profile_rules = nullptr);

/// Every configured device's description, found by name.
class device_catalogue {
 public:
  device_catalogue() = default;
  explicit device_catalogue(std::vector<device_description> devices);
  /// Nullptr for a device the configuration does not have.
  const device_description* find(std::string_view device) const;
  std::span<const device_description> devices() const { return devices_; }
  /// What `value` of a device's point means; empty when unnamed or the device is unknown.
  std::string label(std::string_view device, std::string_view point, double value) const;

 private:
  std::vector<device_description> devices_;  ///< by name
};

}  // namespace firegate
