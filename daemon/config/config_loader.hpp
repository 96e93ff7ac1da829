#pragma once
// Loads and validates a gateway configuration file in two passes (as Mosquitto does): each section is
// parsed into its struct, then cross-field checks run (names unique, devices on declared buses).
// Bus sections are parsed by their driver, found in the table of parsers the caller passes in.

#include "config.hpp"
#include "config_node.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

namespace firegate::config {

/// A device's table, handed to its bus's driver together with the common fields already parsed.
struct device_section {
  const device_config& common;
  config_node& node;
};

/// What a driver's parser may need besides its own tables. One per load of a file.
struct parse_context {
  /// Where profiles are found: [profiles] dir (the site's), then [profiles] shipped, both resolved
  /// against the configuration's folder; a site profile replaces a shipped one of the same name.
  std::vector<std::filesystem::path> profile_dirs;
  std::filesystem::path base;  ///< the configuration's folder, for relative paths
  config_errors& errors;       ///< for errors in files the driver reads itself (profiles)
  /// Drivers' scratch for this load, such as a profile library shared by every bus of a driver.
  std::map<std::string, std::shared_ptr<const void>, std::less<>> cache;
  /// What only one bus may use (a serial line), by the name of the bus that claimed it first.
  std::map<std::string, std::string, std::less<>> claimed;
  std::string bus;  ///< the name of the bus being parsed, as read
};

/// One driver's profile folders ("modbus", "mqtt"), the site's first.
std::vector<std::filesystem::path> profile_folders(const parse_context& context, std::string_view driver);

/// Parses a bus's own keys and its devices' driver keys; records errors on the nodes.
using bus_parser = std::function<std::shared_ptr<const driver_settings>(
    config_node& bus, std::span<device_section> devices, parse_context& context)>;
using bus_parsers = std::map<std::string, bus_parser, std::less<>>;

struct load_result {
  std::optional<gateway_file> config;  ///< set only when there are no errors
  config_errors errors;
  std::string file;  ///< the path as given, used to prefix errors
  /// Every error, one a line, as "FILE:LINE PATH: MESSAGE".
  std::string error_text() const { return errors.format(file); }
  /// The same, one string an error.
  std::vector<std::string> error_lines() const { return errors.lines(file); }
};

/// A [tls] table (the uplink's, or a driver's towards its own broker): files resolved against
/// `base` and checked readable; mutual TLS needs both the certificate and the key.
mqtt_tls_config parse_tls(config_node& node, const std::filesystem::path& base);

/// Parses TOML text; `file` names it in errors.
load_result load_config_text(std::string_view text, const std::string& file, const bus_parsers& parsers);
/// The same, with relative paths (profiles, TLS files, keys) resolved against `base`.
load_result load_config_text(std::string_view text, const std::string& file, const bus_parsers& parsers,
                             const std::filesystem::path& base);
/// A site file's text that is not at `site_path` (a change from the platform, a kept revision),
/// parsed as if it were there: relative paths resolve against the site file's folder, errors name
/// `label`, and the revision is set.
load_result load_config_candidate(std::string_view text, const std::string& label,
                                  const std::filesystem::path& site_path, const bus_parsers& parsers);
/// The revision of a configuration: SHA-256, in hex, of the site file's text and of every profile file
/// (modbus/*.toml, mqtt/*.toml) under each of `profile_dirs`, with their folders and names.
std::string revision_of(std::string_view site_text, const std::vector<std::filesystem::path>& profile_dirs);
/// Reads and parses a file; an unreadable file is one error naming it. The configuration's revision
/// is set.
load_result load_config_file(const std::filesystem::path& path, const bus_parsers& parsers);

}  // namespace firegate::config
