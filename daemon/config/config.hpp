#pragma once
// The gateway's configuration as plain structs, produced by load_config() from one TOML file.
// config/firegate.toml documents every key.

#include "config_errors.hpp"
#include "domain/catalogue.hpp"
#include "domain/rule.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
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
  std::chrono::milliseconds flush_interval{5000};
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
inline const std::vector<std::string> all_commands{
    "ack",       "shield",       "unshield",       "test_mode", "status",     "read",
    "self_test", "config_apply", "config_confirm", "logs",      "diagnostics"};
/// Those accepted unless the site file says otherwise: none of them can silence a detector or change
/// the configuration (shield, test_mode and config_apply must be turned on in [uplink.mqtt] commands),
/// nor read the box's logs (logs, diagnostics).
inline const std::vector<std::string> default_commands{"ack", "unshield", "status", "read", "self_test"};

struct mqtt_uplink_config {
  std::string host;
  std::uint16_t port{1883};
  std::string client_id;     ///< defaults to the gateway id
  std::string topic_prefix;  ///< topics are <prefix>/<site id>/<gateway id>/<kind>
  std::chrono::seconds keepalive{60};
  /// With messages in flight, a connection whose broker acknowledges nothing for this long is taken
  /// as dead and made again: the bound on an alarm's wait on a link that died without closing.
  std::chrono::seconds ack_timeout{10};
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
  std::chrono::seconds heartbeat{900};
  /// The commands this gateway accepts; any other is refused with a reply saying so.
  std::vector<std::string> commands{default_commands};
  /// A command issued longer ago than this is refused (a queued or replayed one).
  std::chrono::seconds command_max_age{300};
  /// When set (command_key_file), only commands signed with it are taken (never logged).
  std::string command_key;
  /// Where it was read from (absolute): shown by `config show`, the key itself never.
  std::string command_key_file;
  /// The broker's limit on a message: a reply larger (logs, diagnostics) goes in parts within it.
  std::size_t max_message_bytes{65536};
  bool operator==(const mqtt_uplink_config&) const = default;
};

/// The GB/T 26875.3 uplink ([uplink.gb26875]; docs/gb26875.md): firegate as a user information
/// transmission device (UITD) towards a town's fire remote-monitoring centre, over TCP.
struct gb26875_uplink_config {
  std::string host;
  std::uint16_t port{0};
  /// This UITD's address and the centre's: 6-byte numbers, as the centre registered them.
  std::uint64_t uitd_address{0};
  std::uint64_t centre_address{0};
  /// The building fire-facility system the devices are reported under.
  std::uint8_t system_type{1};
  std::uint8_t system_address{1};
  /// A send waits this long for the centre's confirm (the standard: at most 10 s) ...
  std::chrono::seconds confirm_timeout{10};
  /// ... and is sent again this many times before the link counts as failed.
  unsigned retries{3};
  /// An empty send-data frame this often while idle, and this often while the link is abnormal.
  std::chrono::seconds heartbeat{25};
  std::chrono::seconds heartbeat_abnormal{5};
  /// Analog values (type 3) of each point at most this often; 0: only when the centre asks.
  std::chrono::seconds analog_interval{60};
  /// The centre's clock synchronisation moves the time labels by at most this much from the box's
  /// own clock; a larger step is refused and reported (clock_sync_refused). 0: never follow it.
  std::chrono::seconds clock_max_step{300};
  bool operator==(const gb26875_uplink_config&) const = default;
};

/// The local control API firegatectl talks to ([control]; docs/control-api.md).
struct control_config {
  bool enabled{true};
  /// The Unix socket; its folder must exist (the package's tmpfiles.d makes /run/firegate).
  std::string socket{"/run/firegate/control.sock"};
  /// Members of this group may use the socket (mode 0660); empty: the daemon's own group. Its own
  /// group, not the service's: a technician who may run firegatectl need not read the database or keys.
  std::string group{"firegate-operators"};
  /// A connection with no request under way is closed after this.
  std::chrono::seconds idle_timeout{120};
  bool operator==(const control_config&) const = default;
};

/// The metrics endpoint ([metrics]; docs/metrics.md): Prometheus's text format over HTTP on the
/// daemon's loop. Off unless enabled; on loopback unless `listen` names another address.
struct metrics_config {
  bool enabled{false};
  std::string address{"127.0.0.1"};  ///< an IPv4 or IPv6 address of this box ("0.0.0.0": every one)
  std::uint16_t port{9464};          ///< Prometheus's port for a gateway's exporter
  /// "127.0.0.1:9464", "[::1]:9464": the key's value as config show writes it.
  std::string listen() const {
    return address.find(':') != std::string::npos ? "[" + address + "]:" + std::to_string(port)
                                                  : address + ":" + std::to_string(port);
  }
  bool operator==(const metrics_config&) const = default;
};

/// Configuration changes from the platform ([remote]; docs/remote.md).
struct remote_config {
  /// A change stands only when the platform confirms it within this; otherwise it is rolled back.
  std::chrono::seconds confirm{120};
  /// Where the changes are kept: default "config" beside the database file.
  std::string dir;
  bool operator==(const remote_config&) const = default;
};

/// One setting in force, as `firegatectl config show` prints it: a key of the site file with its
/// value typed as the file writes it, or (`derived`) something worked out from the file, shown for
/// information only (a comment in the TOML, so that the output loads unchanged).
struct setting {
  std::string key;
  std::variant<std::string, std::int64_t, double, bool> value;
  bool derived{false};
};
using settings_list = std::vector<setting>;

/// A driver's own parsed settings for one bus and its devices; each driver derives from it.
struct driver_settings {
  virtual ~driver_settings() = default;
  /// What each device on the bus is (its profile's points, writes, rules with the site's
  /// overrides, and annotations for the uplinks): the configuration's device catalogue is made of these.
  virtual std::vector<device_description> describe() const { return {}; }
  /// The writables (as device and [[writes]] name) that a raw write of `count` registers or coils of
  /// `table` ("holding", "coil") from `address` on `unit` would change: what a technician's
  /// firegatectl write touches.
  virtual std::vector<std::pair<std::string, std::string>> writables_at(std::uint8_t unit,
                                                                        std::string_view table,
                                                                        std::uint16_t address,
                                                                        std::uint16_t count) const {
    (void)unit;
    (void)table;
    (void)address;
    (void)count;
    return {};
  }
  /// The bus's effective settings, defaults included, for `firegatectl config show`: every key a
  /// site file may set on the bus, so that the output loads as the same configuration. Never a
  /// secret.
  virtual settings_list summary() const { return {}; }
  /// The same for one device on the bus.
  virtual settings_list device_summary(const std::string& device) const {
    (void)device;
    return {};
  }
  /// What the settings allow but will not work well (a schedule its line cannot carry), each with
  /// the line and key path of the bus and a fix. Never an error: `firegated --check-config` and
  /// `firegatectl config check` print them, the daemon logs them at start, and the site still starts.
  virtual std::vector<config_error> warnings() const { return {}; }
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
  /// Its component address towards a GB/T 26875.3 centre (gb26875_address; required with that uplink).
  std::optional<std::uint32_t> gb26875_address;
};

/// Linkage ([[linkage]]): an alarm drives an output through a device's write (a sounder, a
/// breaker's shunt trip, a detector's reset). Only the site file declares linkage: nothing trips
/// a breaker unless the site says so.
struct linkage_config {
  std::string name;
  alarm_category on{alarm_category::fire};  ///< alarms of this category start it
  std::vector<std::string> devices;         ///< ... from these devices (empty: any)
  std::string rule;                         ///< ... decided by this rule (empty: any)
  std::string device;                       ///< the device written
  std::string write;                        ///< its profile's [[writes]] name
  double value{1};
  std::optional<double> reset_value;  ///< written when the alarm ends (nothing when absent)
};

struct gateway_file {
  /// What made this configuration: SHA-256 of the site file and every profile file it was loaded
  /// with, in hex (set by load_config_file; empty for text loaded otherwise).
  std::string revision;
  std::string profiles_dir;  ///< the site's device profiles, resolved against the configuration's folder
  std::string shipped_profiles_dir;  ///< the shipped ones, which the site's replace by name
  gateway_config gateway;
  site_config site;
  storage_config storage;
  alarm_policy alarms;
  /// The MQTT uplink; its host is empty when [uplink.mqtt] is left out, which is allowed only with
  /// the GB/T 26875.3 uplink.
  mqtt_uplink_config mqtt;
  std::optional<gb26875_uplink_config> gb26875;
  control_config control;
  metrics_config metrics;
  remote_config remote;
  std::vector<bus_config> buses;
  std::vector<device_config> devices;
  std::vector<linkage_config> linkages;
  /// What every device is, from its bus's driver (driver_settings::describe()).
  device_catalogue catalogue;
};

/// The device of that name in `cfg`, or null (a linear search: for the occasional lookup, such as an
/// event being sent or a centre's read; the application keeps a map for its hot path).
inline const device_config* find_device(const gateway_file& cfg, std::string_view name) {
  for (const auto& d : cfg.devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

/// Every bus's warnings (driver_settings::warnings()), in the file's order.
inline std::vector<config_error> config_warnings(const gateway_file& cfg) {
  std::vector<config_error> out;
  for (const auto& b : cfg.buses) {
    if (!b.settings) continue;
    for (auto& w : b.settings->warnings()) out.push_back(std::move(w));
  }
  return out;
}

/// "" when `cfg` has a device of that name, else the refusal a person reads: no such device, the
/// closest name, and the devices there are (config/suggest.cpp).
std::string unknown_device(const gateway_file& cfg, std::string_view name);

/// The place categories a site can declare ("nine small places" and factories).
const std::vector<std::string>& place_categories();

}  // namespace firegate::config
