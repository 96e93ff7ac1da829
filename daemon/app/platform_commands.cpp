// The platform's commands (docs/uplink.md, "Commands"), from the MQTT uplink's command topic:
// opened when signed, checked (the allow-list, their age, a retained copy), carried out once (the
// same id again gets its first reply, remembered across a restart), a read answered by the
// device's next poll or a timeout, and every reply published on cmd/reply. What a command does to
// the alarms, the health and the devices is the application's, through its hooks.

#include "platform_commands.hpp"

#include "log_ring.hpp"

#include "config/suggest.hpp"
#include "domain/time_text.hpp"

#include "uplink/mqtt/payloads.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>

namespace firegate {
namespace asio = boost::asio;

platform_commands::platform_commands(asio::io_context& io, store_worker& worker,
                                     const config::gateway_file& site, hooks h)
    : io_(io), store_(worker), site_(site), hooks_(std::move(h)) {}

platform_commands::~platform_commands() {
  stop();
}

void platform_commands::stop() {
  // A read still waiting is not answered (the platform asks again): its timer must not keep the
  // loop from ending.
  for (auto& r : reads_) r.timer->cancel();
  reads_.clear();
  parts_timer_.cancel();
  parts_out_.clear();
  parts_sending_ = false;
}

void platform_commands::remember(std::map<std::string, store::remembered_command, std::less<>> done) {
  done_commands_ = std::move(done);
  done_order_.clear();
  std::vector<std::pair<clock::time_point, std::string>> by_time;
  for (const auto& [id, c] : done_commands_) by_time.emplace_back(c.time, id);
  std::sort(by_time.begin(), by_time.end());
  for (auto& [t, id] : by_time) done_order_.push_back(std::move(id));
}

void platform_commands::on_command(const std::string& payload, bool retained) {
  // An empty message is how a platform clears a retained one: nothing to answer.
  if (payload.empty()) return spdlog::debug("command topic cleared retained={}", retained);
  std::optional<std::string> opened;
  if (!site_.mqtt.command_key.empty()) {
    // Signed with this gateway's key, or not taken at all.
    std::string error, id;
    opened = open_signed_command(payload, site_.mqtt.command_key, error, id);
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
    return answer(cmd, command_refusal(cmd, site_.mqtt.commands, clock::now(), site_.mqtt.command_max_age),
                  {}, {});
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

void platform_commands::run_command(const parsed_command& cmd) {
  std::string error = command_refusal(cmd, site_.mqtt.commands, clock::now(), site_.mqtt.command_max_age);
  if (error.empty()) {
    // Answered once what they ask for is known.
    if (std::holds_alternative<status_command>(*cmd.body)) {
      hooks_.with_health([this, cmd](const gateway_health& h) {
        answer(cmd, "", {}, fmt::format(R"({{"status":{}}})", status_json(site_, h, "requested")));
      });
      return;
    }
    if (const auto* rd = std::get_if<read_command>(&*cmd.body)) {
      error = start_read(cmd, *rd);
      if (error.empty()) return;
    }
    if (const auto* lg = std::get_if<logs_command>(&*cmd.body)) return answer_logs(cmd, *lg);
    if (std::holds_alternative<diagnostics_command>(*cmd.body)) {
      hooks_.diagnostics([this, cmd](nlohmann::json doc) {
        if (doc.is_string()) return answer(cmd, doc.get<std::string>(), {}, {});
        // The recent warnings and errors with it: what went wrong lately, per bus and device.
        std::size_t dropped = 0;
        log_ring::query q;
        q.lines = 100;
        q.level = spdlog::level::warn;
        q.max_bytes = 32768;
        const auto ring = recent_log();
        doc["log"] = ring ? ring->select(q, dropped) : std::vector<std::string>{};
        reply_content c;
        c.key = "diagnostics";
        c.field = "text";
        c.is_text = true;
        c.text = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        c.meta = {{"bytes", c.text.size()}};
        answer_in_parts(cmd, c);
      });
      return;
    }
  }
  if (error.empty() && (std::holds_alternative<config_apply_command>(*cmd.body) ||
                        std::holds_alternative<config_confirm_command>(*cmd.body))) {
    // Remembered whether done or refused by the checker: a replay gets the first reply, and a
    // change rolled back since is not applied again by it.
    auto done = hooks_.configure(*cmd.body, cmd.id);
    answer(cmd, done.error, done.events, done.result.dump(), true, std::move(done.then));
    for (auto& e : done.events) hooks_.raise(std::move(e));
    return;
  }
  std::vector<event> events;
  const bool reached = error.empty();
  if (error.empty()) {
    auto done = hooks_.carry_out(*cmd.body);
    error = std::move(done.error);
    events = std::move(done.events);
  }
  answer(cmd, error, events, {}, reached);
  for (auto& e : events) hooks_.raise(std::move(e));
}

void platform_commands::answer_logs(const parsed_command& cmd, const logs_command& q) {
  const auto ring = recent_log();
  if (!ring) return answer(cmd, "this gateway keeps no log lines in memory", {}, {});
  log_ring::query query;
  query.lines = q.lines;
  if (q.minutes.count() > 0) query.since = clock::now() - q.minutes;
  query.level = parse_log_level(q.level).value_or(spdlog::level::info);
  query.max_bytes = q.max_bytes;
  std::size_t dropped = 0;
  reply_content c;
  c.key = "logs";
  c.field = "lines";
  c.lines = ring->select(query, dropped);
  // `left_out`: lines that matched but went over `lines` or `max_bytes` (the oldest); `forgotten`:
  // lines the box no longer holds (its memory keeps the newest 256 KiB).
  c.meta = {
      {"level", q.level}, {"count", c.lines.size()}, {"left_out", dropped}, {"forgotten", ring->forgotten()}};
  answer_in_parts(cmd, c);
}

void platform_commands::answer_in_parts(const parsed_command& cmd, const reply_content& content) {
  commands_under_way_.erase(cmd.id);
  // max_message_bytes is the broker's limit on a packet: the topic and the header are in it too
  // (a PUBLISH's fixed header, at most 5 bytes; the topic's length, 2; its packet id, 2).
  const auto overhead = topic_for(site_, "cmd/reply").size() + 16;
  const auto limit =
      site_.mqtt.max_message_bytes > overhead + 1024 ? site_.mqtt.max_message_bytes - overhead : 1024;
  auto parts = reply_parts(site_.gateway.id, cmd, content, limit, clock::now());
  std::size_t bytes = 0;
  for (const auto& p : parts) bytes += p.size();
  spdlog::info("command done id={} command={} parts={} bytes={}", cmd.id, cmd.name, parts.size(), bytes);
  for (auto& p : parts) parts_out_.push_back(std::move(p));
  if (!parts_sending_) send_parts();
}

void platform_commands::send_parts() {
  if (parts_out_.empty()) {
    parts_sending_ = false;
    return;
  }
  parts_sending_ = true;
  const auto part = std::move(parts_out_.front());
  parts_out_.pop_front();
  hooks_.reply(part);
  parts_timer_.expires_after(std::chrono::milliseconds(part.size() * 1000 / parts_bytes_per_second));
  parts_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) send_parts();
  });
}

void platform_commands::answer_repeat(const parsed_command& cmd, const std::string& first_reply) {
  spdlog::warn(
      "command repeated id={} command={} action=\"not carried out again; its first reply is sent again\"",
      cmd.id, cmd.name);
  auto j = nlohmann::json::parse(first_reply, nullptr, false);
  if (!j.is_object()) return;
  j["repeated"] = true;
  hooks_.reply(j.dump());
}

void platform_commands::answer(const parsed_command& cmd, const std::string& error,
                               std::span<const event> events, std::string_view result, bool reached_engine,
                               std::function<void()> after) {
  if (error.empty()) {
    spdlog::info("command done id={} command={} events={}", cmd.id, cmd.name, events.size());
  } else {
    spdlog::warn("command refused id={} command={} error=\"{}\"", cmd.id.empty() ? "-" : cmd.id,
                 cmd.name.empty() ? "-" : cmd.name, error);
  }
  const auto reply = command_reply(site_.gateway.id, cmd, error, events, clock::now(), result);
  if (!cmd.body || cmd.retained) return hooks_.reply(reply);
  commands_under_way_.erase(cmd.id);
  // Remembered when it changed something or the alarm engine refused it (a replay must not find a
  // changed state and act): not a read (status, read) nor a refusal before the engine.
  const bool read_only = std::holds_alternative<status_command>(*cmd.body) ||
                         std::holds_alternative<read_command>(*cmd.body) ||
                         std::holds_alternative<logs_command>(*cmd.body) ||
                         std::holds_alternative<diagnostics_command>(*cmd.body);
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
    store_.post(
        [this, loop = io_.get_executor(), id = cmd.id, c, reply, after](store& s) {
          try {
            s.remember_command(id, c);
          } catch (const store_error& e) {
            spdlog::warn("command not remembered id={} error=\"{}\" action=\"known until a restart\"", id,
                         e.what());
          }
          asio::post(loop, [this, reply, after] {
            hooks_.reply(reply);
            if (after) after();
          });
        },
        store_worker::priority::urgent);
    return;
  }
  hooks_.reply(reply);
  if (after) after();
}

std::string platform_commands::start_read(const parsed_command& cmd, const read_command& rd) {
  if (auto error = hooks_.poll_now(rd.device); !error.empty()) return error;
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

void platform_commands::on_readings(std::span<const reading> readings) {
  if (readings.empty() || reads_.empty()) return;
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
