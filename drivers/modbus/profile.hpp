#pragma once
// Device profiles: a device type's points and the block reads that cover them. Loaded from
// <profiles dir>/modbus/*.toml and validated as strictly as the site configuration.
// config/profiles/modbus/*.toml are the shipped ones; each file documents its device.

#include "domain/rule.hpp"
#include "point.hpp"

#include "config/config.hpp"
#include "config/config_errors.hpp"
#include "config/config_node.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::modbus {

/// One request covering several points of one table.
struct read_block {
  read_request request;
  std::vector<std::size_t> points;  ///< indexes into device_profile::points
  bool spans_gap{false};            ///< it reads registers no point uses (see gapless plans)
};

/// Something a master may write: a command register, a setting, a relay coil ([[writes]]).
struct write_def {
  point_def target;  ///< where and how: table (coil or holding), address, type, scale, labels
  /// Read the value back after writing and compare: for relays and settings. Not for command
  /// registers, which read back 0 once the device has acted.
  bool verify{false};
  std::optional<double> min, max;  ///< allowed engineering range, when the device documents one
};

struct device_profile {
  std::string name;
  std::string description;
  std::vector<point_def> points;
  /// Every point, coalesced: a full poll (telemetry interval). It covers the alarm points too.
  std::vector<read_block> blocks;
  /// The alarm group's points only, coalesced: the fast poll between full polls.
  std::vector<read_block> alarm_blocks;
  /// The same two plans without gaps, for a device that answers exception 2 to a read across its
  /// reserved registers (many do); the bus switches such a device to these.
  std::vector<read_block> gapless_blocks, gapless_alarm_blocks;
  std::vector<write_def> writes;
  /// What the device type can alarm on, with its defaults (a site may override per device).
  std::vector<alarm_rule> rules;
  /// The same rules, handed to every device of this profile the site does not override (set once
  /// the profile is read): the alarm engine then keeps one copy of a rule, not one a device.
  std::shared_ptr<const std::vector<alarm_rule>> shared_rules;
  /// What the profile tells the uplinks, by uplink (its [gb26875] table: "gb26875").
  std::map<std::string, annotation_table, std::less<>> annotations;

  /// What the catalogue says of every device of this profile (set once the profile is read).
  std::shared_ptr<const model_description> described;

  const write_def* find_write(std::string_view name) const;
};

/// Registers (or bits) of gap a block may swallow to save a request.
inline constexpr std::uint16_t default_max_gap = 8;

/// Groups points into requests: per table, by address, merging neighbours while the gap between them
/// is at most `max_gap` and the block fits one request (125 registers, 2000 bits).
std::vector<read_block> plan_reads(const std::vector<point_def>& points,
                                   std::uint16_t max_gap = default_max_gap);
/// The same over the points of one group only (indexes still into `points`).
std::vector<read_block> plan_reads(const std::vector<point_def>& points, point_group only,
                                   std::uint16_t max_gap = default_max_gap);

/// Parses and validates one profile's root table. Returns nullopt when it has errors (recorded).
std::optional<device_profile> parse_profile(config::config_node& root);

using profile_library = std::map<std::string, std::shared_ptr<const device_profile>, std::less<>>;

/// Every *.toml in `dir`, by profile name; errors name the file. A missing folder is one error.
profile_library load_profiles(const std::filesystem::path& dir, config::config_errors& errors);
/// The profiles of several folders (the site's first): one in an earlier folder replaces one of the
/// same name in a later folder; a name twice in one folder is an error.
profile_library load_profiles(const std::vector<std::filesystem::path>& folders,
                              config::config_errors& errors);

/// Where the shipped profiles are for the tools (firegate-sim, firegatectl scan): FIREGATE_PROFILES,
/// else the source tree's when run from a build folder, else the installed ones
/// (<prefix>/share/firegate/profiles).
std::string default_profiles_dir();

}  // namespace firegate::modbus
