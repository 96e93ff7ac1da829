#include "config/report_config.hpp"

#include "config/suggest.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace firegate::config {

bool parse_report_keys(config_node& n, report_policy& p) {
  bool ok = true;
  // `on` names a whole strategy: the keys given with it, nothing inherited ("every poll" means
  // every poll, not every poll at most every 10 s). Without it, the keys change the one inherited.
  if (n.contains("on")) p = report_policy{};
  if (auto on =
          n.get_enum_or("on", {"poll", "change"}, p.on == report_policy::mode::change ? "change" : "poll")) {
    p.on = *on == "change" ? report_policy::mode::change : report_policy::mode::every_poll;
  } else {
    ok = false;
  }
  // Every key is read, given or not, so that an unknown key's error lists them all.
  const bool absolute = n.contains("deadband"), percent = n.contains("deadband_percent");
  const auto band = n.get_number("deadband", 0, 1e9, 0.0);
  const auto band_percent = n.get_number("deadband_percent", 0, 1000, 0.0);
  ok &= band.has_value() && band_percent.has_value();
  if (absolute && percent) {
    n.error("deadband_percent", "give deadband (in the point's unit) or deadband_percent, not both");
    ok = false;
  } else if (absolute || percent) {
    p.deadband = (absolute ? band : band_percent).value_or(0);
    p.deadband_percent = percent;
    if (p.on == report_policy::mode::every_poll) {
      n.error(absolute ? "deadband" : "deadband_percent",
              "a deadband is for on = \"change\"; every poll is sent whatever it moved");
      ok = false;
    }
  }
  const auto at_most = n.get_integer("at_most_every_s", 0, 86400, p.at_most_every.count());
  const auto at_least = n.get_integer("at_least_every_s", 0, 7 * 86400, p.at_least_every.count());
  ok &= at_most.has_value() && at_least.has_value();
  p.at_most_every = std::chrono::seconds(at_most.value_or(p.at_most_every.count()));
  p.at_least_every = std::chrono::seconds(at_least.value_or(p.at_least_every.count()));
  if (p.at_least_every.count() > 0 && p.at_least_every < p.at_most_every) {
    n.error(n.contains("at_least_every_s") ? "at_least_every_s" : "at_most_every_s",
            fmt::format("at least every {} s cannot be kept with at most every {} s; make at_least_every_s "
                        "the larger (or 0)",
                        p.at_least_every.count(), p.at_most_every.count()));
    ok = false;
  }
  return ok;
}

bool parse_point_report(config_node& point, report_policy& p) {
  // Asked for even when absent, so that an unknown key's error lists it (and suggests it).
  const bool given = point.contains("report");
  auto n = point.get_table("report", presence::optional);
  if (!n) return !given;
  const auto before = n->error_count();
  const bool ok = parse_report_keys(*n, p);
  n->finish();
  return ok && n->error_count() == before;
}

std::shared_ptr<const report_policies> device_reports(config_node& device, const model_description& model) {
  auto table = device.get_table("report", presence::optional);  // asked for when absent too (see above)
  if (!table) return nullptr;
  const auto before = table->error_count();
  report_policies out;
  std::vector<std::string> names;
  for (const auto& p : model.points) {
    out.push_back(p.report);
    names.push_back(p.name);
  }
  const auto apply = [&](const std::string& key, std::size_t from, std::size_t to) {
    auto n = table->get_table(key, presence::required);
    if (!n) return;
    // One error is enough: the same keys would fail the same way for the next point.
    for (auto i = from; i < to && parse_report_keys(*n, out[i]); ++i) {
    }
    n->finish();
  };
  const auto keys = table->keys();
  // "*" first, whatever its place in the file, so that a named point's keys go over it.
  if (std::find(keys.begin(), keys.end(), "*") != keys.end()) apply("*", 0, out.size());
  for (const auto& key : keys) {
    if (key == "*") continue;
    const auto it = std::find(names.begin(), names.end(), key);
    if (it == names.end()) {
      (void)table->get_table(key, presence::optional);  // read: the one error is this one, not "unknown key"
      table->error(key,
                   fmt::format("no point \"{}\" in this device's profile;{} its points are: {} (or \"*\" "
                               "for all of them)",
                               key, did_you_mean(key, names), fmt::join(names, ", ")));
      continue;
    }
    const auto i = static_cast<std::size_t>(it - names.begin());
    apply(key, i, i + 1);
  }
  table->finish();
  if (table->error_count() != before) return nullptr;
  return std::make_shared<const report_policies>(std::move(out));
}

}  // namespace firegate::config
