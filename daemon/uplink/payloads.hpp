#pragma once
// The JSON the platform receives, built with no I/O. Schemas and examples: docs/uplink.md.
// Every alert carries what a control room needs to act without a lookup (shared/domain/alerts.md).

#include "config/config.hpp"
#include "reading.hpp"
#include "rules/event.hpp"

#include <span>
#include <string>
#include <vector>

namespace firegate {

/// ISO 8601 local time with milliseconds and UTC offset, such as "2026-11-24T14:03:05.123+08:00".
std::string iso8601(clock::time_point t);

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

}  // namespace firegate
