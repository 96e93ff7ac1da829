// The application's side that faces the platform: the uplinks' start and wiring, presence (birth,
// heartbeat, last will, goodbye: docs/uplink.md, "Presence"), the health, and what the platform's
// commands (platform_commands.cpp) and the control API need of the application: an alarm command
// carried out on the engine, a device polled now. Split from application.cpp, which keeps the
// start, the data path and storage.

#include "application.hpp"

#include "config/suggest.hpp"
#include "uplink/mqtt/commands.hpp"
#include "uplink/mqtt/payloads.hpp"

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

void application::start_commands(std::map<std::string, store::remembered_command, std::less<>> remembered) {
  commands_ = std::make_unique<platform_commands>(
      io_, *store_, cfg_,
      platform_commands::hooks{
          [this](std::function<void(gateway_health)> then) { with_health(std::move(then)); },
          [this](const command_body& body) { return carry_out(body); },
          [this](const std::string& device) { return poll_now(device); },
          [this](const std::string& payload) {
            if (uplink_) uplink_->reply(topic_for(cfg_, "cmd/reply"), payload);
          },
          [this](event e) { raise(std::move(e)); }});
  commands_->remember(std::move(remembered));
}

void application::start_uplink() {
  if (cfg_.mqtt.host.empty()) return;  // GB/T 26875.3 only
  uplink_ = std::make_shared<mqtt_uplink>(io_.get_executor(), cfg_, *store_);
  uplink_->on_commands(topic_for(cfg_, "cmd"), [this](std::string payload, bool retained) {
    commands_->on_command(payload, retained);
  });
  uplink_->on_presence(
      topic_for(cfg_, "status"),
      [this] { return offline_json(cfg_, new_event_id(), clock::now(), started_, "connection lost"); },
      [this] { publish_status("connected"); });
  uplink_->start();
}

void application::start_gb26875() {
  if (!cfg_.gb26875) return;
  const unsigned bit = cfg_.mqtt.host.empty() ? 0 : 1;
  // Made whole before they replace the old pair: a failure here leaves the old one as it was.
  auto uplink =
      std::make_shared<gb26875_uplink>(io_.get_executor(), *cfg_.gb26875, *store_, bit, gb26875_mapper(cfg_));
  auto answers = std::make_shared<gb26875_answers>(
      io_.get_executor(), *store_, cfg_, uplink,
      gb26875_answers::sources{[this] { return rules_.open_alarms(); },
                               [this] { return std::span<const reading>(batch_); },
                               [this] { return storage_failing_ || storage_in_memory_; }});
  uplink->on_query(
      [answers = answers.get()](const gb26875::app_data& request, gb26875_answers::reply_handler reply) {
        answers->answer(request, std::move(reply));
      });
  gb26875_answers_ = std::move(answers);
  gb26875_ = std::move(uplink);
  gb26875_->on_clock_refused([this](std::string detail, double step_s) {
    event e;
    e.id = new_event_id();
    e.kind = event_kind::clock_sync_refused;
    e.device = cfg_.gateway.id;
    e.time = clock::now();
    e.value = step_s;
    e.unit = "s";
    e.detail = std::move(detail);
    raise(std::move(e));
  });
  gb26875_->start();
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
  h.uplink_connects = uplink_ ? uplink_->connects() : gb26875_ ? gb26875_->connects() : 0;
  h.config = config_state_;
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

void application::publish_status(std::string_view reason) {
  with_health([this, reason = std::string(reason)](const gateway_health& h) {
    if (uplink_ && !stopping_) uplink_->publish_status(status_json(cfg_, h, reason));
  });
}

void application::schedule_heartbeat() {
  heartbeat_.expires_after(cfg_.mqtt.heartbeat);
  heartbeat_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    if (uplink_ && uplink_->connected()) publish_status("heartbeat");
    schedule_heartbeat();
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
