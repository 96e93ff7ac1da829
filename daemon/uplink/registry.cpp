// The uplinks this build knows, one line each (docs/architecture.md, "Adding an uplink"). The
// order gives the delivery bits: MQTT first, so that a site file with both keeps the bits an older
// firegated gave them.

#include "uplink/uplink.hpp"

#include "uplink/gb26875/gb26875_link.hpp"
#include "uplink/mqtt/mqtt_platform.hpp"

namespace firegate {

std::span<const uplink_entry> registered_uplinks() {
  static const uplink_entry entries[] = {
      mqtt_platform_entry(),
      gb26875_link_entry(),
  };
  return entries;
}

std::vector<const uplink_entry*> configured_uplinks(const config::gateway_file& site) {
  std::vector<const uplink_entry*> out;
  for (const auto& e : registered_uplinks()) {
    if (e.configured(site)) out.push_back(&e);
  }
  return out;
}

}  // namespace firegate
