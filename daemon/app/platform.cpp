// The application's side that faces the platform: the uplink with its presence (birth,
// heartbeat, last will, goodbye: docs/uplink.md, "Presence") and the commands the platform sends
// (carried out on the loop, answered on cmd/reply). Split from application.cpp, which keeps the
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

void application::start_uplink() {
  if (cfg_.mqtt.host.empty()) return;  // GB/T 26875.3 only
  uplink_ = std::make_unique<mqtt_uplink>(io_.get_executor(), cfg_, *store_);
  uplink_->on_commands(topic_for(cfg_, "cmd"),
                       [this](std::string payload, bool retained) { on_command(payload, retained); });
  uplink_->on_presence(
      topic_for(cfg_, "status"),
      [this] { return offline_json(cfg_, new_event_id(), clock::now(), started_, "connection lost"); },
      [this] { publish_status("connected"); });
  uplink_->start();
}

void application::start_gb26875() {
  if (!cfg_.gb26875) return;
  const unsigned bit = cfg_.mqtt.host.empty() ? 0 : 1;
  gb26875_answers_.reset();
  gb26875_ =
      std::make_unique<gb26875_uplink>(io_.get_executor(), *cfg_.gb26875, *store_, bit, gb26875_mapper(cfg_));
  gb26875_answers_ = std::make_unique<gb26875_answers>(
      io_.get_executor(), *store_, cfg_, *gb26875_,
      gb26875_answers::sources{[this] { return rules_.open_alarms(); },
                               [this] { return std::span<const reading>(batch_); },
                               [this] { return storage_failing_ || storage_in_memory_; }});
  gb26875_->on_query([answers = gb26875_answers_.get()](const gb26875::app_data& request,
                                                        gb26875_answers::reply_handler reply) {
    answers->answer(request, std::move(reply));
  });
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

gateway_health application::health() {
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
    asio::post(io_, [this, lanes, then = std::move(then)] {
      if (lanes) outbox_lanes_ = *lanes;
      then(health());
    });
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

void application::on_command(const std::string& payload, bool retained) {
  // An empty message is how a platform clears a retained one: nothing to answer.
  if (payload.empty()) return spdlog::debug("command topic cleared retained={}", retained);
  std::optional<std::string> opened;
  if (!cfg_.mqtt.command_key.empty()) {
    // Signed with this gateway's key, or not taken at all.
    std::string error, id;
    opened = open_signed_command(payload, cfg_.mqtt.command_key, error, id);
    if (!opened) {
      parsed_command refused;
      refused.id = id;
      return answer(refused, error, {}, {});
    }
  }
  auto cmd = parse_command(opened ? *opened : payload);
  cmd.retained = retained;
  const auto known = done_commands_.find(cmd.id);
  if (retained) {
    // The broker's stored copy of a command already carried out comes back at every connect:
    // logged, not answered, so that its first reply stands.
    if (known != done_commands_.end() && known->second.fingerprint == cmd.fingerprint) {
      return spdlog::warn(
          "command retained copy ignored id={} command={} check=\"the platform publishes its commands "
          "retained; "
          "publish them with retain off\"",
          cmd.id, cmd.name);
    }
    // A retained copy is refused whatever it says (command_refusal names why first).
    return answer(cmd, command_refusal(cmd, cfg_.mqtt.commands, clock::now(), cfg_.mqtt.command_max_age), {},
                  {});
  }
  if (!cmd.body) return answer(cmd, cmd.error, {}, {});
  if (known != done_commands_.end()) {
    // The same command again (a replay, or sent again after a lost reply): its first reply again.
    if (known->second.fingerprint == cmd.fingerprint) return answer_repeat(cmd, known->second.reply);
    parsed_command refused = cmd;
    refused.body.reset();  // not remembered
    return answer(
        refused,
        fmt::format("command id {} was already used at {} for a different command; give each command "
                    "its own id",
                    cmd.id, iso8601(known->second.time)),
        {}, {});
  }
  if (!commands_under_way_.insert(cmd.id).second) {
    spdlog::warn(
        "command repeated while under way id={} command={} action=\"the first one's reply answers it\"",
        cmd.id, cmd.name);
    return;
  }
  run_command(cmd);
}

void application::run_command(const parsed_command& cmd) {
  std::string error = command_refusal(cmd, cfg_.mqtt.commands, clock::now(), cfg_.mqtt.command_max_age);
  if (error.empty()) {
    // Answered once what they ask for is known.
    if (std::holds_alternative<status_command>(*cmd.body)) {
      with_health([this, cmd](const gateway_health& h) {
        answer(cmd, "", {}, fmt::format(R"({{"status":{}}})", status_json(cfg_, h, "requested")));
      });
      return;
    }
    if (const auto* rd = std::get_if<read_command>(&*cmd.body)) {
      error = start_read(cmd, *rd);
      if (error.empty()) return;
    }
  }
  std::vector<event> events;
  const bool reached = error.empty();
  if (error.empty()) {
    auto done = carry_out(*cmd.body);
    error = std::move(done.error);
    events = std::move(done.events);
  }
  answer(cmd, error, events, {}, reached);
  for (auto& e : events) raise(std::move(e));
}

void application::answer_repeat(const parsed_command& cmd, const std::string& first_reply) {
  spdlog::warn(
      "command repeated id={} command={} action=\"not carried out again; its first reply is sent again\"",
      cmd.id, cmd.name);
  auto j = nlohmann::json::parse(first_reply, nullptr, false);
  if (!j.is_object()) return;
  j["repeated"] = true;
  if (uplink_) uplink_->reply(topic_for(cfg_, "cmd/reply"), j.dump());
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
    if ((done.error = unknown_device(sh->device)).empty())
      done = rules_.shield(sh->device, sh->length, sh->reason, sh->by, now, wall);
  } else if (const auto* un = std::get_if<unshield_command>(&body)) {
    if ((done.error = unknown_device(un->device)).empty())
      done = rules_.unshield(un->device, un->by, now, wall);
  } else if (const auto* tm = std::get_if<test_mode_command>(&body)) {
    if ((done.error = unknown_device(tm->device)).empty())
      done = rules_.set_test_mode(tm->device, tm->on, tm->length, tm->by, now, wall);
  } else {
    done.error = "not an alarm command";
  }
  return done;
}

void application::answer(const parsed_command& cmd, const std::string& error, std::span<const event> events,
                         std::string_view result, bool reached_engine) {
  if (error.empty()) {
    spdlog::info("command done id={} command={} events={}", cmd.id, cmd.name, events.size());
  } else {
    spdlog::warn("command refused id={} command={} error=\"{}\"", cmd.id.empty() ? "-" : cmd.id,
                 cmd.name.empty() ? "-" : cmd.name, error);
  }
  const auto reply = command_reply(cfg_.gateway.id, cmd, error, events, clock::now(), result);
  if (!cmd.body || cmd.retained) {
    if (uplink_) uplink_->reply(topic_for(cfg_, "cmd/reply"), reply);
    return;
  }
  commands_under_way_.erase(cmd.id);
  // Remembered when it changed something or the alarm engine refused it (a replay must not find a
  // changed state and act): not a read (status, read) nor a refusal before the engine.
  const bool read_only =
      std::holds_alternative<status_command>(*cmd.body) || std::holds_alternative<read_command>(*cmd.body);
  if (!read_only && (error.empty() || reached_engine)) {
    const store::remembered_command c{cmd.fingerprint, reply, clock::now()};
    done_commands_[cmd.id] = c;
    done_order_.push_back(cmd.id);
    while (done_order_.size() > max_remembered_commands) {
      done_commands_.erase(done_order_.front());
      done_order_.pop_front();
    }
    // Stored before the reply leaves, ahead of other jobs: a reply the platform saw is of a
    // command the gateway will know after a power cut.
    store_->post(
        [this, id = cmd.id, c, reply](store& s) {
          try {
            s.remember_command(id, c);
          } catch (const store_error& e) {
            spdlog::warn("command not remembered id={} error=\"{}\" action=\"known until a restart\"", id,
                         e.what());
          }
          asio::post(io_, [this, reply] {
            if (uplink_) uplink_->reply(topic_for(cfg_, "cmd/reply"), reply);
          });
        },
        store_worker::priority::urgent);
    return;
  }
  if (uplink_) uplink_->reply(topic_for(cfg_, "cmd/reply"), reply);
}

std::string application::unknown_device(const std::string& device) const {
  // Devices are checked here, where the configuration is known: the engine takes any name.
  if (find_device(device) != nullptr) return {};
  std::vector<std::string> names;
  for (const auto& d : cfg_.devices) names.push_back(d.name);
  return fmt::format("no device \"{}\" on this gateway;{} its devices: {}", device,
                     config::did_you_mean(device, names), fmt::join(names, ", "));
}

std::string application::start_read(const parsed_command& cmd, const read_command& rd) {
  if (auto error = unknown_device(rd.device); !error.empty()) return error;
  auto* driver = driver_of(rd.device);
  if (driver == nullptr || !driver->poll_now(rd.device)) {
    return fmt::format("{} cannot be polled on demand by its bus's driver", rd.device);
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, read_timeout);
  reads_.push_back({cmd, rd.device, rd.point, clock::now(), timer});
  timer->async_wait([this, timer](boost::system::error_code ec) {
    if (ec) return;
    auto it =
        std::find_if(reads_.begin(), reads_.end(), [&](const pending_read& r) { return r.timer == timer; });
    if (it == reads_.end()) return;
    const auto asked = std::move(it->cmd);
    const auto device = std::move(it->device);
    reads_.erase(it);
    answer(asked,
           fmt::format("no answer from {} within {} s: it is offline or its bus is busy; check its power and "
                       "wiring, and its counters with firegatectl",
                       device, std::chrono::duration_cast<std::chrono::seconds>(read_timeout).count()),
           {}, {});
  });
  return {};
}

void application::answer_reads(std::span<const reading> readings) {
  if (readings.empty()) return;
  const auto& device = readings.front().device;
  for (auto it = reads_.begin(); it != reads_.end();) {
    // A poll that began before the command is not the one it asked for.
    if (it->device != device || readings.front().time < it->asked) {
      ++it;
      continue;
    }
    std::string error;
    if (!it->point.empty() && std::none_of(readings.begin(), readings.end(),
                                           [&](const reading& r) { return r.point == it->point; })) {
      std::vector<std::string> points;
      for (const auto& r : readings) points.push_back(r.point);
      error = fmt::format("{} has no point \"{}\";{} its points: {}", device, it->point,
                          config::did_you_mean(it->point, points), fmt::join(points, ", "));
    }
    answer(it->cmd, error, {}, error.empty() ? readings_result(readings, it->point) : std::string());
    it->timer->cancel();
    it = reads_.erase(it);
  }
}

}  // namespace firegate
