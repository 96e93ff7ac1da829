#pragma once
// The JSON the platform receives, built with no I/O. Schemas and examples: docs/uplink.md.
// Every alert carries what a control room needs to act without a lookup (docs/alarms.md).

#include "config/config.hpp"
#include "domain/event.hpp"
#include "domain/health.hpp"
#include "domain/reading.hpp"
#include "domain/time_text.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace firegate {

/// Topics: <prefix>/<site id>/<gateway id>/<kind>.
std::string topic_for(const config::gateway_file& cfg, std::string_view kind);

/// An alarm, fault or recovery event. `device` may be null for gateway-level events.
std::string event_json(const event& e, const config::gateway_file& cfg, const config::device_config* device);

/// One poll's readings of one device.
/// Telemetry messages for a batch of readings: each carries up to `max_polls` polls (a device's
/// readings with one time), in order. Schema firegate.telemetry/2 (docs/uplink.md).
std::vector<std::string> telemetry_messages(std::span<const reading> readings,
                                            const config::gateway_file& cfg, std::size_t max_polls = 200);
/// The same, naming the gateway by its id only (what the messages need of the configuration).
std::vector<std::string> telemetry_messages(std::span<const reading> readings, const std::string& gateway_id,
                                            std::size_t max_polls = 200);

/// An alarm's evidence as the event JSON carries it: [{name, value, unit, label}] (label where the
/// profile names the value).
nlohmann::json evidence_json(const std::vector<evidence_item>& evidence);

/// The configuration part of the status message and of firegatectl status: revision (its first 12
/// hex digits), loaded, and rejected (null, or time and errors).
nlohmann::json configuration_json(const gateway_health::configuration& c);
/// The clock's health as the status message and firegatectl status give it (docs/clock.md).
nlohmann::json clock_json(const gateway_health::clock_health& c);

/// The retained status message of a running gateway (firegate.status/1, state "online").
/// `reason`: "connected" (the birth message), "heartbeat" or "requested" (the status command).
std::string status_json(const config::gateway_file& cfg, const gateway_health& h, std::string_view reason);

/// The status message of a gateway that is gone (state "offline"): the last will set at each
/// connect (reason "connection lost", `time` the connect time), or the goodbye of a clean stop
/// ("stopped").
std::string offline_json(const config::gateway_file& cfg, const std::string& id, clock::time_point time,
                         clock::time_point started, std::string_view reason);

}  // namespace firegate
