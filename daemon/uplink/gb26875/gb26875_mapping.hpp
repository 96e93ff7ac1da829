#pragma once
// What firegate's events and readings are to a GB/T 26875.3 monitoring centre (docs/gb26875.md,
// "Mapping"): each device is a component (its profile's component type, its gb26875_address from
// the site file, its location as the description in GB 18030) of the one building fire-facility
// system [uplink.gb26875] names; an alarm or fault is a component status (type 2) with the
// standard's bits, the gateway's own faults are UITD status (type 21), readings with a unit the
// standard knows are analog values (type 3). Pure functions of the configuration: no I/O.

#include "config/config.hpp"
#include "domain/event.hpp"
#include "domain/reading.hpp"
#include "gb26875/app_data.hpp"
#include "gb26875/gb18030.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace firegate {

/// Component status bits (docs/gb26875.md, "Status bits").
namespace gb_status {
inline constexpr std::uint16_t normal = 1U << 0;  ///< 1 normal, 0 test
inline constexpr std::uint16_t fire = 1U << 1;
inline constexpr std::uint16_t fault = 1U << 2;
inline constexpr std::uint16_t shielded = 1U << 3;
inline constexpr std::uint16_t supervisory = 1U << 4;
inline constexpr std::uint16_t started = 1U << 5;
inline constexpr std::uint16_t feedback = 1U << 6;
inline constexpr std::uint16_t power_fault = 1U << 8;
inline constexpr std::uint16_t bus_fault = 1U << 10;  ///< system status (type 1) only
}  // namespace gb_status

/// UITD status bits (type 21).
namespace gb_uitd {
inline constexpr std::uint8_t normal = 1U << 0;
inline constexpr std::uint8_t fire = 1U << 1;
inline constexpr std::uint8_t fault = 1U << 2;
inline constexpr std::uint8_t link_fault = 1U << 5;
inline constexpr std::uint8_t line_fault = 1U << 6;  ///< a monitored line (a field bus) has failed
}  // namespace gb_uitd

/// The standard's analog type of a unit, with the factor from the unit to the int16 sent.
struct gb_analog_code {
  std::uint8_t type;
  double factor;
};
/// "°C" → 3 (0.1 °C), "MPa" → 4 (0.1 MPa), "%LEL" → 6 (0.1 %LEL), "V" → 8 (0.1 V), "A" → 9 (0.1 A),
/// "mA" → 128, firegate's user-defined type for residual current in 1 mA; nullopt for other units.
std::optional<gb_analog_code> gb_analog_code_of(std::string_view unit);
inline constexpr std::uint8_t residual_current_analog_type = 128;

/// firegate's version as the standard's major and minor bytes (FIREGATE_VERSION "0.1.0" → 0, 1).
struct gb_version {
  std::int64_t major{0}, minor{0};
};
gb_version firegate_gb_version();

/// The component type of a device's point, from its profile's "gb26875" annotations: the point's
/// own type where the profile gives one, else the device's; 0 when the profile says nothing, and
/// nullopt for a point the profile keeps from the centre (a setting).
std::optional<std::uint8_t> gb_component_type(const annotation_table& types, std::string_view point);

/// The status bits an open alarm (or shield, test mode) of this kind sets on its component.
/// `rule` tells power faults (a rule named for power or battery) from other faults.
std::uint16_t gb_status_bits(event_kind kind, std::string_view rule);

struct gb_component {
  std::uint8_t system_type{1};
  std::uint8_t system_address{1};
  std::uint8_t component_type{0};
  std::uint32_t address{0};
  std::string description;  ///< GB 18030, at most 31 bytes: the device's location
};

class gb26875_mapper {
 public:
  gb26875_mapper() = default;
  /// Needs cfg.gb26875; keeps what it needs (each device's address, location and the component
  /// types its profile gives, from the catalogue's "gb26875" annotations).
  explicit gb26875_mapper(const config::gateway_file& cfg);

  /// The component a device's point is; nullopt for a device not configured, and with
  /// `reported_only` for a point its profile keeps from the centre (a setting).
  std::optional<gb_component> component(std::string_view device, std::string_view point,
                                        bool reported_only = false) const;
  /// The device configured at component address `address`; empty when none.
  std::string device_at(std::uint32_t address) const;
  /// The devices in address order.
  std::vector<std::string> devices() const;

  /// What an event becomes: a component status (type 2), or UITD status (type 21) for the
  /// gateway's own storage faults and its buses. Nullopt for events the protocol has no place for
  /// (acknowledgements, evictions), or with `error` set when it cannot be sent (a device with no
  /// address). Times are the event's own, plus `clock_offset` (the centre's clock minus ours).
  std::optional<gb26875::app_data> event(const firegate::event& e,
                                         std::chrono::system_clock::duration clock_offset,
                                         std::string& error) const;
  /// Analog values (type 3) of the readings with a unit the standard knows, in frames of at most 63.
  std::vector<gb26875::app_data> analog(std::span<const reading> readings,
                                        std::chrono::system_clock::duration clock_offset) const;

 private:
  struct device_entry {
    std::uint32_t address{0};
    std::string description;
    /// "component_type" and "point.<name>" (0: kept from the centre), as the profile gave them.
    annotation_table types;
  };
  std::uint8_t system_type_{1};
  std::uint8_t system_address_{1};
  std::map<std::string, device_entry, std::less<>> devices_;
  std::map<std::uint32_t, std::string> by_address_;
};

}  // namespace firegate
