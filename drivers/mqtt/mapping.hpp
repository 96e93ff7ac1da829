#pragma once
// MQTT ingest mappings (issue 8): how a wireless detector's or a bridge's JSON message becomes
// readings, declared in a profile (config/profiles/mqtt/*.toml) instead of code. Pure: no I/O,
// the driver subscribes and hands each message here; the fuzz target feeds it anything.
//
//   topic = "zigbee2mqtt/+id"          MQTT wildcards; "+id" is one level captured as the device id
//   id_field = "IMEI"                  or the device id from the payload (NB-IoT pushes)
//   [[points]] name = "smoke", field = "smoke", type = "bool"
//   [[points]] name = "alarm_code", field = "data.code", labels = { 201 = "leakage" }
//   [[points]] name = "battery", field = "battery", unit = "%", scale = 1

#include "config/config.hpp"
#include "config/config_node.hpp"
#include "domain/reading.hpp"
#include "domain/rule.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::mqtt_ingest {

/// A subscription pattern: MQTT levels, '+' one level, '#' the rest (last only). One '+' may carry a
/// name ("+id"): the level it matches is the device id.
struct topic_pattern {
  std::vector<std::string> levels;  ///< as written, "+id" kept
  std::optional<std::size_t> capture;
  /// The filter to subscribe with ("+id" as "+").
  std::string filter() const;
};

/// nullopt with `error` set when the pattern is not one (empty levels are allowed, as MQTT allows).
std::optional<topic_pattern> parse_topic_pattern(std::string_view text, std::string& error);

/// The device id the topic names (empty when the pattern captures none), or nullopt when the
/// topic does not match.
std::optional<std::string> match_topic(const topic_pattern& pattern, std::string_view topic);

enum class field_type : std::uint8_t {
  number,   ///< a JSON number (or a numeric string, as some platforms send), scaled
  boolean,  ///< true/false (or 0/1): 1 or 0
};

struct field_point {
  std::string name;
  std::vector<std::string> path;  ///< "data.alarm" → {"data", "alarm"}
  field_type type{field_type::number};
  double scale{1.0};
  double offset{0.0};
  std::string unit;
  std::map<std::int64_t, std::string> labels;  ///< numeric codes → meaning (201 leakage)
  report_policy report;                        ///< how its values go to the platform
};

struct ingest_profile {
  std::string name;
  std::string description;
  topic_pattern topic;
  std::vector<std::string> id_path;  ///< the device id from the payload, when the topic has none
  /// A message counter or timestamp in the payload ("seq"): an older or equal one is a duplicate
  /// or out of order, and is dropped.
  std::vector<std::string> sequence_path;
  /// When the sensor sent the message ("time_field"): seconds or milliseconds since 1970 (a number
  /// or numeric text), or ISO 8601 text with its zone ("2026-12-02T08:00:00.250+08:00"). The
  /// readings take it, so that a message the broker kept while firegated was away carries its own
  /// time; when it is absent, unreadable, over a minute ahead of the gateway's clock or more than
  /// seven days behind it, they take the arrival time (and a problem says why).
  std::vector<std::string> time_path;
  /// A counter at most this far below the last one is a repeat or a late message; further below,
  /// the device restarted its counter and the message is taken.
  double sequence_window{1000};
  /// No message for this long: the device is offline.
  std::chrono::seconds offline_after{3600};
  std::vector<field_point> points;
  std::vector<alarm_rule> rules;
  /// What the profile tells the uplinks, by uplink (its [gb26875] table: "gb26875").
  std::map<std::string, annotation_table, std::less<>> annotations;
  /// What the catalogue says of every device of this profile (set once the profile is read).
  std::shared_ptr<const model_description> described;
};

/// Points the driver adds to every device (not a profile's to name): 1 while the device sends more
/// messages than its rate limit, 1 while its messages cannot be read. Each has a fault rule.
inline constexpr std::string_view flood_point = "ingest_flood";
inline constexpr std::string_view unreadable_point = "ingest_unreadable";

/// The fault rules on those points, added to every device's rules.
std::vector<alarm_rule> builtin_rules();

/// Largest payload taken; a larger one is refused unread.
inline constexpr std::size_t max_payload_bytes = 16 * 1024;

/// What one message said.
struct decoded_message {
  std::string device_id;
  std::optional<double> sequence;
  /// The sensor's own time for the message, when its profile names one and it was usable.
  std::optional<clock::time_point> sent;
  /// Point values found (a point absent from the message is not listed); a field of the wrong
  /// type is listed with quality bad and named in `problems`.
  std::vector<reading> readings;
  std::vector<std::string> problems;
};

/// A message time field's value (see ingest_profile::time_path); nullopt when it is none.
std::optional<clock::time_point> parse_message_time(const nlohmann::json& v);

/// Decodes a message the profile's pattern matched. nullopt with `error` when nothing can be
/// taken from it (too large, not a JSON object, no device id); readings carry `time` and have no
/// device name yet (the driver maps the id to a configured device).
std::optional<decoded_message> decode(const ingest_profile& profile, std::string_view topic,
                                      std::string_view payload, clock::time_point time, std::string& error);

/// Parses a profile's root table; nullopt when it has errors (recorded on the node).
std::optional<ingest_profile> parse_ingest_profile(config::config_node& root);

/// Every *.toml profile in `dir` (a profiles folder's mqtt/), by name; errors name the file.
std::map<std::string, ingest_profile, std::less<>> load_ingest_profiles(const std::filesystem::path& dir,
                                                                        config::config_errors& errors);
/// The profiles of several folders (the site's first): one in an earlier folder replaces one of the
/// same name in a later folder.
std::map<std::string, ingest_profile, std::less<>> load_ingest_profiles(
    const std::vector<std::filesystem::path>& folders, config::config_errors& errors);

}  // namespace firegate::mqtt_ingest
