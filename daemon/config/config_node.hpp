#pragma once
// A TOML table being parsed into plain structs. Getters never throw: a missing, mistyped or
// out-of-range value is recorded in config_errors with its line and key path and the getter returns
// a fallback, so one pass reports every error. Keys that were read are remembered, and finish()
// reports the rest as unknown: a typo must not pass silently.

#include "config_errors.hpp"
#include "domain/catalogue.hpp"

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::config {

/// Whether a key must be present.
enum class presence { required, optional };

/// One table of the file and where it sits. Owned by whoever parses that section; a driver is handed
/// the node of its own bus and devices. Not thread-safe.
class config_node {
 public:
  config_node(const toml::table& table, std::string path, config_errors& errors);

  const std::string& path() const { return path_; }
  std::uint32_t line() const { return table_->source().begin.line; }
  bool contains(std::string_view key) const { return table_->contains(key); }

  /// A string; required ones missing record "missing; <hint>".
  std::optional<std::string> get_string(std::string_view key, presence p, std::string_view hint = {});
  /// A string with a default when absent.
  std::string get_string_or(std::string_view key, std::string fallback);
  /// An optional string that must be one of `allowed`: `fallback` when absent, nullopt (with the
  /// error recorded) when present but not allowed.
  std::optional<std::string> get_enum_or(std::string_view key, const std::vector<std::string>& allowed,
                                         std::string fallback);
  /// A string that must be one of `allowed`.
  std::optional<std::string> get_enum(std::string_view key, presence p,
                                      const std::vector<std::string>& allowed);

  /// An integer in [min, max]; absent gives `fallback` (nullopt and an error when `fallback` is nullopt).
  std::optional<std::int64_t> get_integer(std::string_view key, std::int64_t min, std::int64_t max,
                                          std::optional<std::int64_t> fallback);
  /// A number (integer or float) in [min, max].
  std::optional<double> get_number(std::string_view key, double min, double max,
                                   std::optional<double> fallback);
  bool get_bool(std::string_view key, bool fallback);
  /// An array of integers; absent gives an empty one.
  std::vector<std::int64_t> get_integer_array(std::string_view key);
  std::vector<std::string> get_string_array(std::string_view key);
  /// The keys of this table, in file order.
  std::vector<std::string> keys() const;

  /// A sub-table; a missing required one records an error and returns nullopt.
  std::optional<config_node> get_table(std::string_view key, presence p);
  /// An array of tables ([[key]]); each element's path is "key[i]".
  std::vector<config_node> get_table_array(std::string_view key);

  /// Records an error against `key` of this table (line of the key if present, else of the table).
  void error(std::string_view key, std::string message);
  /// Records an error against the table itself.
  void error(std::string message);
  /// Records every key that no getter read as unknown, with the keys that are known.
  void finish();
  /// Takes `key` as known without reading it: a table that cannot be checked because what it
  /// refers to is missing (a device's rule overrides when its profile could not be loaded), whose
  /// root cause is reported once elsewhere.
  void skip(std::string_view key) { read_.emplace(key); }
  /// Errors recorded so far in the whole file (this node's and every other's).
  std::size_t error_count() const;

  std::string child_path(std::string_view key) const;

 private:
  const toml::node* lookup(std::string_view key);
  std::uint32_t line_of(std::string_view key) const;
  void type_error(std::string_view key, std::string_view expected, const toml::node& found);

  const toml::table* table_;
  std::string path_;
  config_errors* errors_;
  std::set<std::string, std::less<>> read_;
};

/// When a bus's devices name profiles from a folder where none could be loaded: one error on the
/// bus naming them (the first five), after the folder's own, rather than one a device.
void report_devices_without_profiles(config_node& bus, std::vector<std::string> devices,
                                     const std::string& folder);

/// The profile folders of one driver (`folders`: the site's first, then the shipped ones), from the
/// lowest precedence to the highest, each handed to `each` when it exists: a profile in a later
/// folder replaces one of the same name from an earlier one. When none exists, one error on the
/// site's folder saying it should hold `what` ("modbus/*.toml").
void for_each_profile_folder(const std::vector<std::filesystem::path>& folders, config_errors& errors,
                             std::string_view what,
                             const std::function<void(const std::filesystem::path&)>& each);
/// The folders, as an error names them: "SITE/modbus or SHIPPED/modbus".
std::string profile_folders_text(const std::vector<std::filesystem::path>& folders);

/// Every *.toml in `dir`, in name order, parsed and handed to `each` with its root table; errors
/// name the file. A missing folder is one error saying it should hold `what` ("modbus/*.toml").
void for_each_toml(const std::filesystem::path& dir, config_errors& errors, std::string_view what,
                   const std::function<void(config_node&)>& each);

/// Whether `labels` name `value` (a whole number among its keys).
inline bool has_label(const std::map<std::int64_t, std::string>& labels, double value) {
  const auto key = label_key(value);
  return key && labels.contains(*key);
}

/// labels = { 0 = "normal", 1 = "fire" } (raw value → meaning) into `out`; absent is fine. False
/// when present and wrong (recorded on `n`).
bool get_labels(config_node& n, std::map<std::int64_t, std::string>& out);

}  // namespace firegate::config
