#pragma once
// The MQTT ingest driver ("mqtt"): one [[buses]] entry is one site broker (Zigbee and LoRa bridges,
// an NB-IoT platform's push); its devices are named by the id their messages carry and mapped by an
// ingest profile (config/profiles/mqtt/*.toml, mapping.hpp). docs/mqtt-ingest.md.

#include "../driver.hpp"
#include "mapping.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace firegate::mqtt_ingest {

using profile_library = std::map<std::string, ingest_profile, std::less<>>;

struct ingest_device_settings {
  std::string name;
  std::string id;                          ///< as its messages carry it (a topic level or a payload field)
  const ingest_profile* profile{nullptr};  ///< in the bus's library
  std::chrono::seconds offline_after{3600};
  /// The profile's rules with this device's overrides, and the driver's own fault rules.
  std::shared_ptr<const std::vector<alarm_rule>> rules;
  /// The same before this device's overrides (shared by the profile's devices).
  std::shared_ptr<const std::vector<alarm_rule>> profile_rules;
  /// Its report strategies with the site's overrides ([devices.report]); null: the profile's.
  std::shared_ptr<const report_policies> reports;
};

/// [[buses]] with driver = "mqtt".
struct ingest_bus_settings final : config::driver_settings {
  std::string host;
  std::uint16_t port{1883};
  std::string client_id;
  std::string username;
  std::string password;  ///< never logged
  std::optional<config::mqtt_tls_config> tls;
  std::chrono::seconds keepalive{30};
  /// A session the site broker keeps while firegated is away (clean session off, QoS 1
  /// subscriptions): what sensors publish meanwhile is delivered at the next connect.
  bool persistent_session{true};
  /// MQTT 5 (default): the broker is told the largest packet firegated takes and never sends a
  /// larger one. "3.1.1" for a site broker that speaks nothing newer: a huge payload is then read
  /// whole before it is refused, and Paho keeps a read buffer of its size.
  bool mqtt5{true};
  /// Messages a second each device may send, and how many it may send at once above that rate.
  double max_rate{5};
  double burst{20};
  /// Messages waiting to be decoded, at most (each topic at most a twentieth of them).
  std::size_t queue_limit{20000};
  std::shared_ptr<const profile_library> library;
  std::vector<ingest_device_settings> devices;

  std::vector<device_description> describe() const override;
  config::settings_list summary() const override;
  config::settings_list device_summary(const std::string& device) const override;
  const ingest_device_settings* find(const std::string& device) const;
};

driver_entry mqtt_driver_entry();

/// The bus driver over Paho (ingest_bus.cpp).
std::unique_ptr<bus_driver> make_ingest_bus(boost::asio::any_io_executor executor, std::string name,
                                            std::shared_ptr<const ingest_bus_settings> settings,
                                            reading_sink& sink);

}  // namespace firegate::mqtt_ingest
