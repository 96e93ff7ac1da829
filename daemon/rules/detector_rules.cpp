#include "detector_rules.hpp"

#include <fmt/format.h>

namespace firegate {

std::vector<event> detector_rules::on_readings(std::span<const reading> readings) {
  std::vector<event> out;
  for (const auto& r : readings) {
    if (r.point != "state" || r.q != quality::good) continue;
    auto active = fire_.find(r.device);
    if (r.value == fire_state && active == fire_.end()) {
      event e{new_id_(), 0,  event_kind::fire_alarm, r.device, r.point, r.value, r.unit,
              r.time,    {}, "detector reports fire"};
      fire_.emplace(r.device, e.id);
      out.push_back(std::move(e));
    } else if (r.value == normal_state && active != fire_.end()) {
      out.push_back({new_id_(), 0, event_kind::fire_recovery, r.device, r.point, r.value, r.unit, r.time,
                     active->second, "detector back to normal"});
      fire_.erase(active);
    }
  }
  return out;
}

std::vector<event> detector_rules::on_device_status(const device_status& status) {
  std::vector<event> out;
  auto active = offline_.find(status.device);
  if (!status.online && active == offline_.end()) {
    event e{new_id_(),
            0,
            event_kind::device_offline,
            status.device,
            {},
            0,
            {},
            status.time,
            {},
            fmt::format("no answer from {}: {}", status.detail, status.error.message())};
    offline_.emplace(status.device, e.id);
    out.push_back(std::move(e));
  } else if (status.online && active != offline_.end()) {
    out.push_back({new_id_(),
                   0,
                   event_kind::device_online,
                   status.device,
                   {},
                   0,
                   {},
                   status.time,
                   active->second,
                   fmt::format("answering again at {}", status.detail)});
    offline_.erase(active);
  }
  return out;
}

}  // namespace firegate
