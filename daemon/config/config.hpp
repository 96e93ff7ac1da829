#pragma once
// The gateway's configuration as plain structs, produced by load_config() from one TOML file.
// config/firegate.toml documents every key.

#include "rules/rule_spec.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace firegate::config {

struct contact {
  std::string name;
  std::string phone;
  bool operator==(const contact&) const = default;
};

/// The place the gateway protects: what a control-room operator reads on every alert.
struct site_config {
  std::string id;
  std::string name;
  std::string address;
  std::string category;  ///< one of place_categories()
  double latitude{0};
  double longitude{0};
  contact responsible;  ///< fire-safety responsible person
  contact backup;       ///< backup contact
  bool operator==(const site_config&) const = default;
};

struct gateway_config {
  std::string id;  ///< unique per platform; used in topics, so [A-Za-z0-9_-]
  std::string description;
  bool operator==(const gateway_config&) const = default;
};

struct storage_config {
  std::string path;
  /// Readings are written in one transaction this often (events at once, with a full sync): the
  /// most telemetry a power cut can lose.
  std::chrono::milliseconds flush_interval{1000};
  /// The database is kept under this (oldest telemetry evicted first; never an undelivered event).
  std::uint64_t max_size_mb{256};
  /// Readings, telemetry and event history older than this are removed.
  std::chrono::hours max_age{24 * 30};
  bool operator==(const storage_config&) const = default;
};

/// TLS towards the platform broker. Paths are absolute (relative ones are resolved against the
/// configuration file's folder when it is read).
struct mqtt_tls_config {
  std::string ca_file;    ///< the CA that signed the broker's certificate (PEM)
  std::string ca_path;    ///< or a folder of hashed CA certificates; neither: the system's store
  std::string cert_file;  ///< the gateway's certificate for mutual TLS (PEM), with key_file
  std::string key_file;
  std::string key_password;  ///< never logged
  /// Verify the broker's certificate and that it names the host. Off only for a bench test.
  bool verify{true};
  bool operator==(const mqtt_tls_config&) const = default;
};

/// The commands the platform may send (docs/uplink.md, "Commands").
inline const std::vector<std::string> all_commands{"ack",    "shield", "unshield", "test_mode",
                                                   "status", "read",   "self_test"};

struct mqtt_uplink_config {
  std::string host;
  std::uint16_t port{1883};
  std::string client_id;     ///< defaults to the gateway id
  std::string topic_prefix;  ///< topics are <prefix>/<site id>/<gateway id>/<kind>
  std::chrono::seconds keepalive{30};
  bool telemetry{true};
  /// Messages published and not yet acknowledged by the broker, at most.
  std::size_t max_in_flight{32};
  /// Telemetry messages a second at most, so that a backlog does not flood the broker.
  double telemetry_rate{50};
  /// Polls in one telemetry message at most; a message holds at most one flush of readings
  /// ([storage] flush_interval_ms), so that is its age at most.
  std::size_t telemetry_batch{200};
  std::string username;
  std::string password;  ///< never logged
  /// Present: the connection is TLS ([uplink.mqtt.tls]).
  std::optional<mqtt_tls_config> tls;
  /// The status message (retained) is published on connect and then every `heartbeat`.
  std::chrono::seconds heartbeat{60};
  /// The commands this gateway accepts; any other is refused with a reply saying so.
  std::vector<std::string> commands{all_commands};
  bool operator==(const mqtt_uplink_config&) const = default;
};

/// The local control API firegatectl talks to ([control]; docs/control-api.md).
struct control_config {
  bool enabled{true};
  /// The Unix socket; its folder must exist (systemd's RuntimeDirectory makes /run/firegate).
  std::string socket{"/run/firegate/control.sock"};
  /// Members of this group may use the socket (mode 0660); empty: the daemon's own group.
  std::string group{"firegate"};
  bool operator==(const control_config&) const = default;
};

/// A device's alarm rules: its profile's, with the site's overrides applied.
struct device_alarm_rules {
  std::string device;
  std::vector<rules::alarm_rule> rules;
};

/// A driver's own parsed settings for one bus and its devices; each driver derives from it.
struct driver_settings {
  virtual ~driver_settings() = default;
  /// The alarm rules of each device on the bus.
  virtual std::vector<device_alarm_rules> device_rules() const { return {}; }
  /// The names of what can be written to `device` (its profile's [[writes]]); nullopt when the
  /// device is not on this bus.
  virtual std::optional<std::vector<std::string>> device_writes(const std::string& device) const {
    (void)device;
    return std::nullopt;
  }
  /// What `device` is, for people: its profile's name ("SD-1"); empty when not on this bus.
  virtual std::string device_model(const std::string& device) const {
    (void)device;
    return {};
  }
  /// What a point's value means when its profile names it ("fire" for state 1); empty otherwise.
  virtual std::string label(const std::string& device, const std::string& point, double value) const {
    (void)device;
    (void)point;
    (void)value;
    return {};
  }
  /// The bus's effective settings, defaults included, as (key, value) for `firegatectl config show`.
  /// Never a secret.
  virtual std::vector<std::pair<std::string, std::string>> summary() const { return {}; }
  /// The same for one device on the bus.
  virtual std::vector<std::pair<std::string, std::string>> device_summary(const std::string& device) const {
    (void)device;
    return {};
  }
};

struct bus_config {
  std::string name;
  std::string driver;  ///< a registered driver name, such as "modbus_tcp"
  std::shared_ptr<const driver_settings> settings;
};

/// What every device has, whatever its driver; the driver parses the rest of its table.
struct device_config {
  std::string name;
  std::string bus;
  std::string location;     ///< building / floor / room or loop-point
  std::string description;  ///< what the device is, as the control room should read it
};

/// Linkage ([[linkage]]): an alarm drives an output through a device's write (a sounder, a
/// breaker's shunt trip, a detector's reset). Only the site file declares linkage: nothing trips
/// a breaker unless the site says so.
struct linkage_config {
  std::string name;
  rules::alarm_category on{rules::alarm_category::fire};  ///< alarms of this category start it
  std::vector<std::string> devices;                       ///< ... from these devices (empty: any)
  std::string rule;                                       ///< ... decided by this rule (empty: any)
  std::string device;                                     ///< the device written
  std::string write;                                      ///< its profile's [[writes]] name
  double value{1};
  std::optional<double> reset_value;  ///< written when the alarm ends (nothing when absent)
};

struct gateway_file {
  std::string profiles_dir;  ///< device profiles, resolved against the configuration's folder
  gateway_config gateway;
  site_config site;
  storage_config storage;
  rules::alarm_policy alarms;
  mqtt_uplink_config mqtt;
  control_config control;
  std::vector<bus_config> buses;
  std::vector<device_config> devices;
  std::vector<linkage_config> linkages;
};

/// The place categories a site can declare ("nine small places" and factories).
const std::vector<std::string>& place_categories();

}  // namespace firegate::config
