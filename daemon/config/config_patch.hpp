#pragma once
// Remote edits of a gateway's site file: a JSON patch of named keys applied to the TOML text, and a
// one-line summary of what changed between two site files, for the people who approve the change.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::config {

struct patch_result {
  std::optional<std::string> text;  ///< the patched site file, when the patch applies
  std::string error;                ///< else why not, naming the path and what exists there
};

/// Applies `patch_json` to the site file `site_text`. The patch is the JSON text of an object with any of
/// these members (others are refused):
///   "add":    {"devices": [{...}, ...], "buses": [...], "linkage": [...]}: each object is appended to
///             that array of tables; refused when the array already has an element of the same "name",
///             or the object has no string "name"
///   "set":    {"dotted.path": value, ...}: creates missing tables on the way, replaces what is there
///   "remove": ["dotted.path", ...]: the path must exist
/// applied in that order (add, then set, then remove), so a set can address a device just added; the
/// members of "set" in the order the patch lists them.
///
/// A path's segments are split on '.': a segment names a key of a table, or, inside an array of tables,
/// the element whose `name` equals it (`devices.smoke-3.unit_id`, `uplink.mqtt.host`). JSON values
/// become TOML values of their own kind (an array of objects becomes an array of tables); null has no
/// TOML form and is refused. The result is the whole table written by toml++'s formatter: comments and
/// the original order of keys are not kept. Never throws: every failure is a sentence in `error`.
patch_result apply_patch(std::string_view site_text, std::string_view patch_json);

/// What changed from one site file to the next, on one line, e.g.
/// "devices +smoke-9 ~heat-2 -smoke-3; buses ~rtu-1; changed alarms, uplink.mqtt": per named element of
/// devices, buses, linkage (added, changed, removed), then the tables and keys that changed. "no change"
/// when the two parse equal, "the file was rewritten" when either does not parse.
std::string diff_summary(std::string_view before, std::string_view after);

/// The names of `list`'s entries ("buses") in `after` that are new or differ from `before`'s; empty when
/// either does not parse.
std::vector<std::string> added_or_changed(std::string_view before, std::string_view after,
                                          std::string_view list);

}  // namespace firegate::config
