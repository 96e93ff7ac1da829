// The application's answers to a GB/T 26875.3 centre's reads (docs/gb26875.md, "What the centre
// can ask"): the uplink handles the protocol, the application knows the alarms and readings.
// Split from platform.cpp, which faces the MQTT platform.

#include "application.hpp"

#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include <algorithm>

namespace firegate {
namespace asio = boost::asio;
namespace gb = gb26875;

namespace {

std::int64_t number(const gb::info_object& o, std::size_t field) {
  if (field >= o.values.size()) return -1;
  const auto* n = std::get_if<std::int64_t>(&o.values[field]);
  return n ? *n : -1;
}

}  // namespace

void application::answer_gb26875(const gb::app_data& request,
                                 std::function<void(std::optional<gb::app_data>)> reply) {
  const auto& gbc = *cfg_.gb26875;
  const auto& mapper = gb26875_->mapper();
  const auto offset = gb26875_ ? gb26875_->clock_offset() : std::chrono::system_clock::duration{};
  const auto now = gb::local_time_label(clock::now() + offset);
  const std::int64_t sys_type = gbc.system_type, sys_address = gbc.system_address;
  const auto& asked = request.objects.front();
  // Reads of the facility name the system; one this gateway is not is not answered.
  const bool our_system = number(asked, 0) == sys_type && number(asked, 1) == sys_address;
  const auto open = rules_.open_alarms();
  const auto bits_of = [&](const std::string& device) {
    std::uint16_t bits = gb_status::normal;
    const auto* d = device.empty() ? nullptr : find_device(device);
    for (const auto& a : open) {
      if (device.empty() || a.device == device) bits |= gb_status_bits(a.kind, a.rule);
      // A component behind a bus that is down cannot be reached: a fault of its own to the centre.
      if (d != nullptr && a.kind == event_kind::bus_offline && a.device == d->bus) bits |= gb_status::fault;
    }
    // A device in test mode is under test (bit 0 clear); the facility is not, for one such device.
    for (const auto& a : open) {
      if (!device.empty() && a.device == device && a.kind == event_kind::test_mode_started)
        bits = static_cast<std::uint16_t>(bits & ~gb_status::normal);
    }
    return bits;
  };
  const auto component_at = [&](std::int64_t address) -> std::optional<std::pair<std::string, gb_component>> {
    if (!our_system || address < 0) return std::nullopt;
    const auto device = mapper.device_at(static_cast<std::uint32_t>(address));
    if (device.empty()) return std::nullopt;
    return std::pair{device, *mapper.component(device, "")};
  };

  switch (request.type) {
    case 61:  // facility system status
      if (!our_system) return reply(std::nullopt);
      return reply(gb::app_data{1, {{{sys_type, sys_address, std::int64_t{bits_of("")}}, now}}});
    case 62: {  // component running status
      const auto c = component_at(number(asked, 2));
      if (!c) return reply(std::nullopt);
      const auto& [device, comp] = *c;
      return reply(
          gb::app_data{2,
                       {{{sys_type, sys_address, std::int64_t{comp.component_type},
                          std::int64_t{comp.address}, std::int64_t{bits_of(device)}, comp.description},
                         now}}});
    }
    case 63: {  // component analog values: the device's latest readings, from the store
      const auto c = component_at(number(asked, 2));
      if (!c) return reply(std::nullopt);
      store_->post([this, device = c->first, offset, reply = std::move(reply)](store& s) mutable {
        std::vector<reading> latest;
        try {
          latest = s.latest_readings(device);
        } catch (const store_error&) {
          // Answered with nothing: the storage fault is reported by the writes.
        }
        asio::post(io_,
                   [this, device, latest = std::move(latest), offset, reply = std::move(reply)]() mutable {
                     if (!gb26875_) return;
                     // Readings not yet flushed to the store are newer than what it has.
                     for (const auto& r : batch_) {
                       if (r.device != device || r.q != quality::good)
                         continue;  // a failed poll keeps the last value
                       auto it = std::find_if(latest.begin(), latest.end(),
                                              [&](const reading& l) { return l.point == r.point; });
                       if (it == latest.end()) {
                         latest.push_back(r);
                       } else if (r.time >= it->time) {
                         *it = r;
                       }
                     }
                     auto frames = gb26875_->mapper().analog(latest, offset);
                     if (frames.empty()) return reply(std::nullopt);
                     reply(std::move(frames.front()));
                   });
      });
      return;
    }
    case 65: {  // facility software version: firegate's own
      if (!our_system) return reply(std::nullopt);
      const auto v = firegate_gb_version();
      return reply(gb::app_data{5, {{{sys_type, sys_address, v.major, v.minor}, std::nullopt}}});
    }
    case 66: {  // facility system configuration
      if (!our_system) return reply(std::nullopt);
      auto text = fmt::format("firegate site={} devices={}", cfg_.site.id, mapper.devices().size());
      return reply(gb::app_data{6, {{{sys_type, sys_address, gb26875::to_gb18030(text, 255)}, now}}});
    }
    case 67: {  // component configuration
      const auto c = component_at(number(asked, 2));
      if (!c) return reply(std::nullopt);
      const auto& comp = c->second;
      return reply(gb::app_data{7,
                                {{{sys_type, sys_address, std::int64_t{comp.component_type},
                                   std::int64_t{comp.address}, comp.description},
                                  now}}});
    }
    case 68:  // facility system time
      if (!our_system) return reply(std::nullopt);
      return reply(gb::app_data{8, {{{sys_type, sys_address, now}, now}}});
    case 81: {  // UITD running status
      std::int64_t uitd = gb_uitd::normal;
      const auto bits = bits_of("");
      if (bits & gb_status::fire) uitd |= gb_uitd::fire;
      if (storage_failing_ || storage_in_memory_) uitd |= gb_uitd::fault;
      if (bits & gb_status::bus_fault) uitd |= gb_uitd::fault | gb_uitd::line_fault;
      return reply(gb::app_data{21, {{{uitd}, now}}});
    }
    case 86: {  // UITD configuration
      auto text = fmt::format("firegate {} gateway={} site={} \"{}\" devices={}", FIREGATE_VERSION,
                              cfg_.gateway.id, cfg_.site.id, cfg_.site.name, cfg_.devices.size());
      return reply(gb::app_data{26, {{{gb26875::to_gb18030(text, 255)}, now}}});
    }
    default:
      // 64 and 84 (operation records): firegate keeps no operator panel records. The uplink answers
      // 85 and 88 itself.
      return reply(std::nullopt);
  }
}

}  // namespace firegate
