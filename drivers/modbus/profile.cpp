#include "profile.hpp"

#include "../driver.hpp"

#include "config/alarm_rules.hpp"
#include "config/report_config.hpp"
#include "config/suggest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace firegate::modbus {
namespace {

const std::vector<std::string> table_names{"coil", "discrete_input", "holding", "input"};
const std::vector<std::string> type_names{"bool", "bit", "int16", "uint16", "int32", "uint32", "float32"};
const std::vector<std::string> order_names{"big", "little"};
const std::vector<std::string> group_names{"alarm", "telemetry"};

template <typename E>
E index_of(const std::vector<std::string>& names, const std::string& value) {
  return static_cast<E>(std::find(names.begin(), names.end(), value) - names.begin());
}

bool is_bit_table(register_table t) {
  return t == register_table::coil || t == register_table::discrete_input;
}

/// A [[points]] entry, or with `writable` the point part of a [[writes]] entry (no group or invalid
/// values: a write has neither).
std::optional<point_def> parse_point(config::config_node& n, std::set<std::string, std::less<>>& names,
                                     bool writable = false, const report_policy& report = {}) {
  point_def p;
  p.report = report;
  bool ok = true;
  auto name = n.get_string("name", config::presence::required, "name the point, such as \"state\"");
  if (name && !names.insert(*name).second) {
    n.error("name", fmt::format("\"{}\" is used by another point of this profile", *name));
    ok = false;
  }
  ok &= name.has_value();
  p.name = name.value_or("");
  auto table = n.get_enum("table", config::presence::required, table_names);
  ok &= table.has_value();
  if (table) p.table = index_of<register_table>(table_names, *table);
  auto address = n.get_integer("address", 0, 65535, std::nullopt);
  ok &= address.has_value();
  p.address = static_cast<std::uint16_t>(address.value_or(0));

  auto type = n.get_enum_or("type", type_names, is_bit_table(p.table) ? "bool" : "uint16");
  ok &= type.has_value();
  if (type) p.type = index_of<data_type>(type_names, *type);
  if (table && type) {
    if (is_bit_table(p.table) != (p.type == data_type::boolean)) {
      n.error("type", is_bit_table(p.table)
                          ? fmt::format("a {} holds single bits; use type = \"bool\"", *table)
                          : "bool is for coil and discrete_input tables; for one bit of a register "
                            "use type = \"bit\" with bit = 0–15");
      ok = false;
    }
  }
  if (p.type == data_type::bit) {
    auto bit = n.get_integer("bit", 0, 15, std::nullopt);
    ok &= bit.has_value();
    p.bit = static_cast<std::uint8_t>(bit.value_or(0));
  } else if (n.contains("bit")) {
    n.error("bit", "only for type = \"bit\"");
    (void)n.get_integer("bit", 0, 15, 0);
    ok = false;
  }
  auto bytes = n.get_enum_or("byte_order", order_names, "big");
  auto words = n.get_enum_or("word_order", order_names, "big");
  ok &= bytes.has_value() && words.has_value();
  if (bytes) p.bytes = index_of<byte_order>(order_names, *bytes);
  if (words) p.words = index_of<word_order>(order_names, *words);
  if (n.contains("word_order") && register_span(p) != 2) {
    n.error("word_order", "only for 32-bit types (int32, uint32, float32)");
    ok = false;
  }
  if (static_cast<std::uint32_t>(p.address) + register_span(p) > 65536) {
    n.error("address", "a 32-bit point needs two registers; this one would run past 65535");
    ok = false;
  }
  auto scale = n.get_number("scale", -1e9, 1e9, 1.0);
  if (scale && *scale == 0) {
    n.error("scale", "0 would make every value 0; use 1 for no scaling");
    ok = false;
  }
  ok &= scale.has_value();
  p.scale = scale.value_or(1.0);
  auto offset = n.get_number("offset", -1e9, 1e9, 0.0);
  ok &= offset.has_value();
  p.offset = offset.value_or(0.0);
  p.unit = n.get_string_or("unit", "");
  ok &= config::get_labels(n, p.labels);
  if (writable) return ok ? std::optional<point_def>(std::move(p)) : std::nullopt;
  for (auto& raw : n.get_integer_array("invalid")) p.invalid.push_back(raw);
  auto group = n.get_enum_or("group", group_names, "telemetry");
  ok &= group.has_value();
  if (group) p.group = index_of<point_group>(group_names, *group);
  ok &= config::parse_point_report(n, p.report);
  n.finish();
  return ok ? std::optional<point_def>(std::move(p)) : std::nullopt;
}

/// [[writes]]: a point's keys (coil or holding table) and verify, min, max.
std::optional<write_def> parse_write(config::config_node& n, std::set<std::string, std::less<>>& names) {
  write_def w;
  bool ok = true;
  w.verify = n.get_bool("verify", false);
  if (n.contains("min")) w.min = n.get_number("min", -1e12, 1e12, std::nullopt);
  if (n.contains("max")) w.max = n.get_number("max", -1e12, 1e12, std::nullopt);
  if (w.min && w.max && *w.min > *w.max) {
    n.error("max", fmt::format("{} is below min = {}; swap them", *w.max, *w.min));
    ok = false;
  }
  auto target = parse_point(n, names, true);
  if (target) {
    if (target->table != register_table::coil && target->table != register_table::holding) {
      n.error("table",
              "only coils and holding registers can be written; use table = \"coil\" or \"holding\"");
      ok = false;
    } else if (target->type == data_type::bit) {
      n.error("type",
              "a single bit of a register cannot be written without disturbing its neighbours; write the "
              "whole register (uint16) with the value the device's manual gives");
      ok = false;
    }
  }
  n.finish();
  if (!ok || !target) return std::nullopt;
  w.target = std::move(*target);
  return w;
}

}  // namespace

namespace {

std::vector<read_block> plan(const std::vector<point_def>& points, std::optional<point_group> only,
                             std::uint16_t max_gap) {
  std::map<register_table, std::vector<std::size_t>> by_table;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (!only || points[i].group == *only) by_table[points[i].table].push_back(i);
  }
  std::vector<read_block> blocks;
  for (auto& [table, indexes] : by_table) {
    const std::uint32_t limit = is_bit_table(table) ? max_read_bits : max_read_registers;
    std::sort(indexes.begin(), indexes.end(),
              [&](std::size_t a, std::size_t b) { return points[a].address < points[b].address; });
    read_block block;
    std::uint32_t end = 0;  // one past the last register (or bit) the block covers
    for (auto i : indexes) {
      const std::uint32_t first = points[i].address;
      const std::uint32_t last = first + register_span(points[i]);
      const bool fits = !block.points.empty() && first <= end + max_gap &&
                        std::max(end, last) - block.request.address <= limit;
      if (!block.points.empty() && !fits) {
        blocks.push_back(std::move(block));
        block = {};
      }
      if (block.points.empty()) {
        block.request = {read_function(table), static_cast<std::uint16_t>(first), 0};
        end = first;
      }
      end = std::max(end, last);
      block.request.count = static_cast<std::uint16_t>(end - block.request.address);
      block.points.push_back(i);
    }
    if (!block.points.empty()) blocks.push_back(std::move(block));
  }
  for (auto& b : blocks) {
    std::set<std::uint32_t> used;
    for (auto i : b.points) {
      for (std::uint32_t k = 0; k < register_span(points[i]); ++k) used.insert(points[i].address + k);
    }
    b.spans_gap = used.size() < b.request.count;
  }
  return blocks;
}

}  // namespace

std::vector<read_block> plan_reads(const std::vector<point_def>& points, std::uint16_t max_gap) {
  return plan(points, std::nullopt, max_gap);
}

std::vector<read_block> plan_reads(const std::vector<point_def>& points, point_group only,
                                   std::uint16_t max_gap) {
  return plan(points, only, max_gap);
}

const write_def* device_profile::find_write(std::string_view wanted) const {
  for (const auto& w : writes) {
    if (w.target.name == wanted) return &w;
  }
  return nullptr;
}

std::optional<device_profile> parse_profile(config::config_node& root) {
  device_profile profile;
  bool ok = true;
  const auto errors_before = root.error_count();
  auto name = root.get_string("name", config::presence::required, "name the device type, such as \"SD-1\"");
  ok &= name.has_value();
  profile.name = name.value_or("");
  profile.description = root.get_string_or("description", "");
  auto nodes = root.get_table_array("points");
  if (nodes.empty()) {
    root.error("points", "no [[points]]; a profile needs at least one");
    ok = false;
  }
  // The profile's report strategy ([report]), which each point's own `report` keys change.
  report_policy report;
  ok &= config::parse_point_report(root, report);
  std::set<std::string, std::less<>> names;
  for (auto& n : nodes) {
    if (auto p = parse_point(n, names, false, report)) {
      profile.points.push_back(std::move(*p));
    } else {
      ok = false;
    }
  }
  std::set<std::string, std::less<>> write_names;
  for (auto& n : root.get_table_array("writes")) {
    if (auto w = parse_write(n, write_names)) {
      profile.writes.push_back(std::move(*w));
    } else {
      ok = false;
    }
  }
  ok &= config::parse_alarm_rules(root, names, profile.rules);
  ok &= config::parse_uplink_annotations(root, names, profile.annotations);
  root.finish();
  // Any error in this profile, an unknown key at any depth included, and it is not a profile.
  if (!ok || root.error_count() != errors_before) return std::nullopt;
  // A rule's evidence is read in the same poll as the point it watches: with the alarm group.
  for (const auto& r : profile.rules) {
    const auto* watched = std::find_if(profile.points.data(), profile.points.data() + profile.points.size(),
                                       [&](const point_def& p) { return p.name == r.point; });
    if (watched == profile.points.data() + profile.points.size() || watched->group != point_group::alarm)
      continue;
    for (auto& p : profile.points) {
      if (std::find(r.evidence.begin(), r.evidence.end(), p.name) != r.evidence.end())
        p.group = point_group::alarm;
    }
  }
  profile.shared_rules = std::make_shared<const std::vector<alarm_rule>>(profile.rules);
  profile.blocks = plan_reads(profile.points);
  profile.alarm_blocks = plan_reads(profile.points, point_group::alarm);
  profile.gapless_blocks = plan_reads(profile.points, 0);
  profile.gapless_alarm_blocks = plan_reads(profile.points, point_group::alarm, 0);
  profile.described = describe_model(profile, [&](model_description& m) {
    for (const auto& w : profile.writes) m.writes.push_back(w.target.name);
  });
  return profile;
}

profile_library load_profiles(const std::vector<std::filesystem::path>& folders,
                              config::config_errors& errors) {
  profile_library library;
  config::for_each_profile_folder(folders, errors, "modbus/*.toml", [&](const std::filesystem::path& dir) {
    profile_library own;
    config::for_each_toml(dir, errors, "modbus/*.toml", [&](config::config_node& node) {
      if (auto profile = parse_profile(node)) {
        auto name = profile->name;  // copied: the profile is moved from below
        auto shared = std::make_shared<const device_profile>(std::move(*profile));
        if (!own.emplace(name, std::move(shared)).second) {
          errors.add(0, "name", fmt::format("profile \"{}\" is defined twice in {}", name, dir.string()));
        }
      }
    });
    for (auto& [name, profile] : own) library.insert_or_assign(name, std::move(profile));
  });
  return library;
}

profile_library load_profiles(const std::filesystem::path& dir, config::config_errors& errors) {
  return load_profiles(std::vector<std::filesystem::path>{dir}, errors);
}

std::string default_profiles_dir() {
  if (const char* env = std::getenv("FIREGATE_PROFILES")) return env;
#ifdef FIREGATE_SOURCE_PROFILES
  for (const char* dir : {FIREGATE_SOURCE_PROFILES, FIREGATE_SHIPPED_PROFILES}) {
#else
  for (const char* dir : {FIREGATE_SHIPPED_PROFILES}) {
#endif
    std::error_code ec;
    if (std::filesystem::is_directory(std::filesystem::path(dir) / "modbus", ec)) return dir;
  }
  return FIREGATE_SHIPPED_PROFILES;
}

}  // namespace firegate::modbus
