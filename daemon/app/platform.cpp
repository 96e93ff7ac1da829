// The application's side that faces the platform: the uplinks made from the registry
// (uplink/uplink.hpp) with what only the application gives them, the health, and what the
// platform's commands (platform_commands.cpp) and the control API need of the application: an
// alarm command carried out on the engine, a device polled now. Split from application.cpp, which
// keeps the start, the data path and storage.

#include "application.hpp"

#include "config/suggest.hpp"
#include "uplink/mqtt/commands.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

namespace firegate {
namespace asio = boost::asio;

std::map<std::string, store::remembered_command, std::less<>> application::recent_commands(store& s) const {
  try {
    return s.commands_since(clock::now() - cfg_.mqtt.command_max_age - std::chrono::minutes(1));
  } catch (const store_error& e) {
    spdlog::warn("storage cannot read the commands carried out error=\"{}\"", e.what());
    return {};
  }
}

std::unique_ptr<config_changes> application::make_config_changes() {
  return std::make_unique<config_changes>(
      io_, config_path_,
      config_changes::hooks{[this](config::gateway_file next, const std::string& how) {
                              apply_configuration(std::move(next), how);
                            },
                            [this] {
                              const auto* u = platform_uplink();
                              return u != nullptr && u->connected();
                            },
                            [this] {
                              // The buses whose transport is down now, with what failed (their open
                              // bus_offline).
                              std::vector<std::pair<std::string, std::string>> down;
                              for (const auto& a : rules_.open_alarms()) {
                                if (a.kind == event_kind::bus_offline) down.emplace_back(a.device, a.detail);
                              }
                              return down;
                            },
                            [this] {
                              std::vector<std::string> up;
                              for (std::size_t i = 0; i < drivers_.size() && i < cfg_.buses.size(); ++i) {
                                const auto counters = drivers_[i]->counters();
                                if (std::any_of(counters.begin(), counters.end(),
                                                [](const device_counters& c) { return c.online; }))
                                  up.push_back(cfg_.buses[i].name);
                              }
                              return up;
                            },
                            [this](event e) { raise(std::move(e)); }, [this] { return new_event_id(); }});
}

void application::start_commands(std::map<std::string, store::remembered_command, std::less<>> remembered) {
  commands_ = std::make_unique<platform_commands>(
      io_, *store_, cfg_,
      platform_commands::hooks{
          [this](std::function<void(gateway_health)> then) { with_health(std::move(then)); },
          [this](const command_body& body) { return carry_out(body); },
          [this](const std::string& device) { return poll_now(device); },
          [this](const std::string& payload) {
            if (auto* u = platform_uplink()) u->reply(payload);
          },
          [this](event e) { raise(std::move(e)); },
          [this](const command_body& body, const std::string& command_id) {
            if (const auto* apply = std::get_if<config_apply_command>(&body))
              return changes_->apply(*apply, command_id, cfg_);
            return changes_->confirm(std::get<config_confirm_command>(body));
          },
          [this](std::function<void(nlohmann::json)> done) {
            // The control API is made after the commands at start: a diagnostics before it waits.
            if (!control_api_) return done(nlohmann::json("the gateway is still starting; ask again"));
            control_api_->diagnostics(std::move(done));
          }});
  commands_->remember(std::move(remembered));
}

void application::start_uplinks() {
  uplink_services_ = uplink_services{
      [this](event e) { raise(std::move(e)); },
      [this] { return new_event_id(); },
      [this](std::function<void(gateway_health)> then) { with_health(std::move(then)); },
      [this](const std::string& payload, bool retained) { commands_->on_command(payload, retained); },
      [this] { return rules_.open_alarms(); },
      [this] { return std::span<const reading>(batch_); },
      [this] { return storage_failing_ || storage_in_memory_; },
      started_};
  // The same list, and so the same bits, as the store was given (application::run).
  const auto configured = configured_uplinks(cfg_);
  for (unsigned bit = 0; bit < configured.size(); ++bit) {
    uplinks_.push_back({configured[bit], bit, make_uplink(*configured[bit], bit)});
  }
  for (auto& u : uplinks_) u.link->start();
}

std::shared_ptr<uplink> application::make_uplink(const uplink_entry& entry, unsigned bit) {
  return entry.create(uplink_context{io_.get_executor(), cfg_, *store_, bit, uplink_services_});
}

const uplink* application::main_uplink() const {
  return uplinks_.empty() ? nullptr : uplinks_.front().link.get();
}

uplink* application::platform_uplink() const {
  for (const auto& u : uplinks_) {
    if (u.link->carries_commands()) return u.link.get();
  }
  return nullptr;
}

void application::offer_to_uplinks(outbox_item item, bool follows) {
  // Telemetry only to those that send it: its readings are not copied for nothing.
  std::vector<uplink*> to;
  for (auto& u : uplinks_) {
    if (item.lane != lane::telemetry || u.entry->telemetry) to.push_back(u.link.get());
  }
  for (std::size_t i = 0; i < to.size(); ++i) {
    to[i]->offer(i + 1 == to.size() ? std::move(item) : item, follows);
  }
}

gateway_health application::health(std::optional<std::array<std::size_t, 3>> outbox_lanes) {
  if (outbox_lanes) outbox_lanes_ = *outbox_lanes;
  gateway_health h;
  h.id = new_event_id();
  h.time = clock::now();
  h.started = started_;
  h.outbox = outbox_lanes_;
  h.devices = cfg_.devices.size();
  h.devices_offline = offline_devices_.size();
  h.alarms = rules_.count();
  h.storage = storage_in_memory_ ? "memory" : storage_failing_ ? "failing" : "ok";
  h.storage_faults = storage_faults_;
  h.uplink_connects = main_uplink() != nullptr ? main_uplink()->connects() : 0;
  h.config = config_state_;
  h.wall_clock = clock_health();
  h.config.source = changes_->source();
  if (const auto& p = changes_->pending()) {
    h.config.pending = p->revision;
    h.config.pending_deadline = p->deadline;
  }
  return h;
}

void application::with_health(std::function<void(gateway_health)> then) {
  store_->post([this, then = std::move(then)](store& s) mutable {
    std::optional<std::array<std::size_t, 3>> lanes;
    try {
      lanes = s.outbox_depth_by_lane();
    } catch (const store_error&) {
      // Reported by the writes that fail; the last depths stand.
    }
    asio::post(io_, [this, lanes, then = std::move(then)] { then(health(lanes)); });
  });
}

alarm_engine::outcome application::carry_out(const command_body& body) {
  const auto now = rules::mono::now();
  const auto wall = clock::now();
  alarm_engine::outcome done;
  if (const auto* ack = std::get_if<ack_command>(&body)) {
    done = rules_.acknowledge(ack->alarm_id, ack->verdict, ack->by, wall);
  } else if (const auto* st = std::get_if<self_test_command>(&body)) {
    done = rules_.self_test(st->by, wall);
  } else if (const auto* sh = std::get_if<shield_command>(&body)) {
    if ((done.error = config::unknown_device(cfg_, sh->device)).empty())
      done = rules_.shield(sh->device, sh->length, sh->reason, sh->by, now, wall);
  } else if (const auto* un = std::get_if<unshield_command>(&body)) {
    if ((done.error = config::unknown_device(cfg_, un->device)).empty())
      done = rules_.unshield(un->device, un->by, now, wall);
  } else if (const auto* tm = std::get_if<test_mode_command>(&body)) {
    if ((done.error = config::unknown_device(cfg_, tm->device)).empty())
      done = rules_.set_test_mode(tm->device, tm->on, tm->length, tm->by, now, wall);
  } else {
    done.error = "not an alarm command";
  }
  return done;
}

std::string application::poll_now(const std::string& device) {
  if (auto error = config::unknown_device(cfg_, device); !error.empty()) return error;
  auto* driver = driver_of(device);
  if (driver == nullptr || !driver->poll_now(device)) {
    return fmt::format("{} cannot be polled on demand by its bus's driver", device);
  }
  return {};
}

}  // namespace firegate
