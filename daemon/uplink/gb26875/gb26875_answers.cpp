// The gateway's answers to a GB/T 26875.3 centre's reads (docs/gb26875.md, "What the centre can
// ask"): the uplink handles the protocol; what the gateway knows (its open alarms, its latest
// readings, its storage's state) comes from the sources the application gives, and the store.

#include "gb26875_answers.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

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

gb26875_answers::gb26875_answers(asio::any_io_executor loop, store_worker& worker,
                                 const config::gateway_file& site,
                                 std::shared_ptr<const gb26875_uplink> uplink, sources s)
    : loop_(std::move(loop)),
      worker_(worker),
      site_(site),
      uplink_(std::move(uplink)),
      sources_(std::move(s)) {}

void gb26875_answers::answer(const gb::app_data& request, reply_handler reply) {
  const auto& gbc = *site_.gb26875;
  const auto& mapper = uplink_->mapper();
  const auto offset = uplink_->clock_offset();
  const auto now = gb::local_time_label(clock::now() + offset);
  const std::int64_t sys_type = gbc.system_type, sys_address = gbc.system_address;
  // Reads of the facility name systems (61, 65, 66, 68) or components (62, 63, 67), several at
  // once where the standard allows: each one this gateway is answers, others are left out (and
  // said in the log); none at all is a deny.
  const auto ours = [&](const gb::info_object& o) {
    return number(o, 0) == sys_type && number(o, 1) == sys_address;
  };
  std::vector<std::string> left_out;
  const auto component_at =
      [&](const gb::info_object& o) -> std::optional<std::pair<std::string, gb_component>> {
    const auto address = number(o, 2);
    const auto device = ours(o) && address >= 0 ? mapper.device_at(static_cast<std::uint32_t>(address)) : "";
    if (device.empty()) {
      left_out.push_back(fmt::format("system {}/{} component {}", number(o, 0), number(o, 1), address));
      return std::nullopt;
    }
    return std::pair{device, *mapper.component(device, "")};
  };
  const auto system_named = [&](const gb::info_object& o) {
    if (ours(o)) return true;
    left_out.push_back(fmt::format("system {}/{}", number(o, 0), number(o, 1)));
    return false;
  };
  auto answer = [type = request.type, reply = std::move(reply)](
                    gb::app_data d, const std::vector<std::string>& not_ours) mutable {
    if (!not_ours.empty()) {
      spdlog::info(
          "gb26875 uplink read left objects out type={} left_out=\"{}\" answered={} check=\"what the centre "
          "names must be this gateway's: [uplink.gb26875] system_type and system_address, the devices' "
          "gb26875_address; a device with no readings yet: firegatectl device NAME\"",
          type, fmt::join(not_ours, "; "), d.objects.size());
    }
    if (d.objects.empty()) return reply(std::nullopt);
    reply(std::move(d));
  };
  const auto open = sources_.open_alarms();
  const auto bits_of = [&](const std::string& device) {
    std::uint16_t bits = gb_status::normal;
    const auto* d = device.empty() ? nullptr : config::find_device(site_, device);
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

  gb::app_data out;
  switch (request.type) {
    case 61:  // facility system status
      out.type = 1;
      for (const auto& o : request.objects) {
        if (system_named(o)) out.objects.push_back({{sys_type, sys_address, std::int64_t{bits_of("")}}, now});
      }
      return answer(std::move(out), left_out);
    case 62:  // component running status
      out.type = 2;
      for (const auto& o : request.objects) {
        if (const auto c = component_at(o)) {
          const auto& [device, comp] = *c;
          out.objects.push_back(
              {{sys_type, sys_address, std::int64_t{comp.component_type}, std::int64_t{comp.address},
                std::int64_t{bits_of(device)}, comp.description},
               now});
        }
      }
      return answer(std::move(out), left_out);
    case 63: {  // component analog values: the devices' latest readings, from the store
      std::vector<std::string> devices;
      for (const auto& o : request.objects) {
        if (const auto c = component_at(o)) devices.push_back(c->first);
      }
      if (devices.empty()) return answer(gb::app_data{3, {}}, left_out);
      // The job holds this object for its answer and touches nothing of it on the store's thread.
      worker_.post([this, self = shared_from_this(), loop = loop_, devices = std::move(devices), left_out,
                    offset, answer = std::move(answer)](store& s) mutable {
        std::vector<reading> latest;
        for (const auto& device : devices) {
          try {
            auto one = s.latest_readings(device);
            latest.insert(latest.end(), one.begin(), one.end());
          } catch (const store_error&) {
            // Answered without it: the storage fault is reported by the writes.
          }
        }
        asio::post(loop, [this, self = std::move(self), devices = std::move(devices),
                          left_out = std::move(left_out), latest = std::move(latest), offset,
                          answer = std::move(answer)]() mutable {
          // Readings not yet flushed to the store are newer than what it has.
          for (const auto& r : sources_.unflushed()) {
            if (std::find(devices.begin(), devices.end(), r.device) == devices.end() || r.q != quality::good)
              continue;  // a failed poll keeps the last value
            auto it = std::find_if(latest.begin(), latest.end(), [&](const reading& l) {
              return l.device == r.device && l.point == r.point;
            });
            if (it == latest.end()) {
              latest.push_back(r);
            } else if (r.time >= it->time) {
              *it = r;
            }
          }
          // A device of this gateway with no value the standard has a type for yet: left out, said.
          for (const auto& device : devices) {
            const auto has = [&](const reading& r) { return r.device == device; };
            if (std::none_of(latest.begin(), latest.end(), has))
              left_out.push_back(fmt::format("{}: no readings yet", device));
          }
          gb::app_data all{3, {}};
          for (auto& part : uplink_->mapper().analog(latest, offset)) {
            for (auto& o : part.objects) all.objects.push_back(std::move(o));
          }
          answer(std::move(all), left_out);
        });
      });
      return;
    }
    case 65: {  // facility software version: firegate's own
      const auto v = firegate_gb_version();
      out.type = 5;
      if (system_named(request.objects.front()))
        out.objects.push_back({{sys_type, sys_address, v.major, v.minor}, std::nullopt});
      return answer(std::move(out), left_out);
    }
    case 66: {  // facility system configuration
      const auto text = gb26875::to_gb18030(
          fmt::format("firegate site={} devices={}", site_.site.id, mapper.devices().size()), 255);
      out.type = 6;
      for (const auto& o : request.objects) {
        if (system_named(o)) out.objects.push_back({{sys_type, sys_address, text}, std::nullopt});
      }
      return answer(std::move(out), left_out);
    }
    case 67:  // component configuration
      out.type = 7;
      for (const auto& o : request.objects) {
        if (const auto c = component_at(o)) {
          const auto& comp = c->second;
          out.objects.push_back({{sys_type, sys_address, std::int64_t{comp.component_type},
                                  std::int64_t{comp.address}, comp.description},
                                 std::nullopt});
        }
      }
      return answer(std::move(out), left_out);
    case 68:  // facility system time: the time is the object
      out.type = 8;
      if (system_named(request.objects.front()))
        out.objects.push_back({{sys_type, sys_address, now}, std::nullopt});
      return answer(std::move(out), left_out);
    case 81: {  // UITD running status
      std::int64_t uitd = gb_uitd::normal;
      const auto bits = bits_of("");
      if (bits & gb_status::fire) uitd |= gb_uitd::fire;
      if (sources_.storage_faulty()) uitd |= gb_uitd::fault;
      if (bits & gb_status::bus_fault) uitd |= gb_uitd::fault | gb_uitd::line_fault;
      return answer(gb::app_data{21, {{{uitd}, now}}}, left_out);
    }
    case 86: {  // UITD configuration
      auto text = fmt::format("firegate {} gateway={} site={} \"{}\" devices={}", FIREGATE_VERSION,
                              site_.gateway.id, site_.site.id, site_.site.name, site_.devices.size());
      return answer(gb::app_data{26, {{{gb26875::to_gb18030(text, 255)}, std::nullopt}}}, left_out);
    }
    default:
      // 64 and 84 (operation records): firegate keeps no operator panel records. The uplink answers
      // 85 and 88 itself.
      return answer(gb::app_data{request.type, {}}, left_out);
  }
}

}  // namespace firegate
