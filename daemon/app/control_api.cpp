// The local control API (docs/control-api.md): what each firegatectl request does. The socket,
// credentials and limits are control/control_server.cpp's; streams, exports, raw registers and the
// configuration are control_api_streams.cpp. Every handler runs on the loop; what needs the store is
// asked of its thread and answered back on the loop.

#include "control_api.hpp"
#include "control_json.hpp"

#include "app/alarm_lookup.hpp"
#include "app/rules_view.hpp"

#include "config/suggest.hpp"
#include "uplink/gb26875/gb26875_uplink.hpp"
#include "uplink/mqtt/commands.hpp"
#include "uplink/mqtt/payloads.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>

namespace firegate {
namespace asio = boost::asio;
using json = nlohmann::json;
using control::refuse;
using control::reply;
using namespace control_json;

namespace {

/// The commands firegatectl may send (docs/control-api.md).
const std::vector<std::string> control_commands{
    "status",         "devices",  "device",         "alarms",         "ack",
    "shield",         "unshield", "test_mode",      "test_alarm",     "tail",
    "config",         "export",   "read",           "write",          "scan",
    "gb26875_answer", "metrics",  "config_history", "config_rollback"};

}  // namespace

control_api::control_api(asio::io_context& io, store_worker& worker, const config::gateway_file& site,
                         const std::filesystem::path& config_path, sources src, hooks h)
    : io_(io), store_(worker), site_(site), config_path_(config_path), src_(src), hooks_(std::move(h)) {}

control_api::~control_api() {
  stop();
}

void control_api::open() {
  if (server_) {
    server_->stop();
    server_.reset();
  }
  if (stopping_ || !site_.control.enabled) return;
  server_ = std::make_unique<control::server>(
      io_.get_executor(), [this](const session_ptr& s, const json& request) { on_request(s, request); });
  if (auto error = server_->start(site_.control.socket, site_.control.group, site_.control.idle_timeout);
      !error.empty()) {
    // firegatectl is for people on site; the gateway's job goes on without it.
    spdlog::error(
        "control socket unavailable path={} error=\"{}\" action=\"firegatectl cannot reach this daemon\"",
        site_.control.socket, error);
    server_.reset();
  }
}

void control_api::stop() {
  stopping_ = true;
  if (server_) server_->stop();
  for (auto& w : watchers_) {
    if (w.deadline) w.deadline->cancel();
  }
  watchers_.clear();
}

json control_api::open_alarm_json(const open_alarm& a) const {
  return alarm_json(a, config::find_device(site_, a.device),
                    a.point.empty() ? std::string() : label_of(a.device, a.point, a.value));
}

std::string control_api::label_of(const std::string& device, const std::string& point, double value) const {
  return site_.catalogue.label(device, point, value);
}

std::string control_api::device_at(std::size_t bus, int unit) const {
  if (bus >= site_.buses.size() || !site_.buses[bus].settings) return {};
  const auto& b = site_.buses[bus];
  for (const auto& d : site_.devices) {
    if (d.bus != b.name) continue;
    for (const auto& s : b.settings->device_summary(d.name)) {
      const auto* id = std::get_if<std::int64_t>(&s.value);
      if (s.key == "unit_id" && id != nullptr && *id == unit) return d.name;
    }
  }
  return {};
}

void control_api::on_request(const session_ptr& s, const json& request) {
  const auto id = request.contains("id") ? request["id"] : json(nullptr);
  const auto name = request["command"].get<std::string>();
  static const json no_args = json::object();
  const auto args_it = request.find("args");
  if (args_it != request.end() && !args_it->is_object()) {
    s->send(refuse(id, "bad_request", "\"args\" must be an object"));
    return s->done();
  }
  const json& args = args_it == request.end() ? no_args : *args_it;
  spdlog::debug("control request command={} user={} uid={} pid={}", name, s->who().user, s->who().uid,
                s->who().pid);
  if (stopping_) {
    s->send(refuse(id, "failed", "the daemon is stopping"));
    return s->done();
  }
  const auto text_arg = [&](const char* key) {
    auto it = args.find(key);
    return it != args.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (name == "status") return status(s, id);
  if (name == "devices") return devices(s, id, {});
  if (name == "device") {
    const auto device = text_arg("name");
    if (auto error = config::unknown_device(site_, device); !error.empty()) {
      s->send(refuse(id, "unknown_device", error));
      return s->done();
    }
    return devices(s, id, device);
  }
  if (name == "alarms") return alarms(s, id, args);
  if (name == "ack") return ack(s, id, args);
  if (name == "shield" || name == "unshield" || name == "test_mode" || name == "test_alarm")
    return alarm_command(s, id, name, args);
  if (name == "tail") return tail(s, id, args);
  if (name == "config") {
    s->send(reply(id, config_json()));
    return s->done();
  }
  if (name == "config_history") {
    s->send(reply(id, hooks_.config_history()));
    return s->done();
  }
  if (name == "config_rollback") {
    auto done = hooks_.config_rollback(text_arg("revision"), s->who().user);
    if (!done.error.empty()) {
      s->send(refuse(id, "refused", done.error));
    } else {
      s->send(reply(id, done.result));
      for (auto& e : done.events) hooks_.raise(std::move(e));
    }
    s->done();
    // After this request's handler: the change may close this socket to open another.
    if (done.then) asio::post(io_, std::move(done.then));
    return;
  }
  if (name == "export") return export_readings(s, id, args);
  if (name == "read" || name == "write" || name == "scan") return registers(s, id, name, args);
  if (name == "gb26875_answer") return answer_inspection(s, id, args);
  if (name == "metrics") {
    // The same text the [metrics] endpoint serves, whether or not it is enabled.
    return hooks_.metrics([s, id](std::string text) {
      if (s->closed()) return;
      s->send(reply(id, json{{"format", "prometheus-text-0.0.4"}, {"text", std::move(text)}}));
      s->done();
    });
  }
  s->send(
      refuse(id, "unknown_command",
             fmt::format("no command \"{}\";{} the commands are: {}", name,
                         config::did_you_mean(name, control_commands), fmt::join(control_commands, ", "))));
  s->done();
}

void control_api::answer_inspection(const session_ptr& s, const json& id, const json& args) {
  // The duty person answers the centre's inspection check.
  auto* gb = hooks_.gb26875();
  if (gb == nullptr) {
    s->send(refuse(id, "failed", "no GB/T 26875.3 uplink is configured ([uplink.gb26875])"));
    return s->done();
  }
  std::string bad;
  const auto op = whole_arg(args, "operator", 0, 0, 255, bad);
  if (!op) {
    s->send(refuse(id, "bad_request", bad));
    return s->done();
  }
  const auto number = static_cast<unsigned>(*op);
  if (auto error = gb->answer_inspection(number); !error.empty()) {
    s->send(refuse(id, "failed", error));
    return s->done();
  }
  spdlog::info("control inspection answered operator={} user={}", number, s->who().user);
  s->send(reply(id, json{{"answered", true}, {"operator", number}}));
  s->done();
}

void control_api::status(const session_ptr& s, const json& id) {
  status_document([s, id](json result) {
    s->send(reply(id, std::move(result)));
    s->done();
  });
}

void control_api::diagnostics(std::function<void(nlohmann::json)> done) {
  status_document([this, done = std::move(done)](json status) {
    json devices = json::array();
    for (const auto& driver : src_.drivers) {
      for (const auto& c : driver->counters()) devices.push_back(device_json(c));
    }
    done(json{{"status", std::move(status)}, {"devices", std::move(devices)}});
  });
}

void control_api::status_document(std::function<void(nlohmann::json)> done) {
  store_.post([this, done = std::move(done)](store& st) mutable {
    json storage;
    std::optional<std::array<std::size_t, 3>> lanes;
    try {
      lanes = st.outbox_depth_by_lane();
      storage["used_bytes"] = st.used_bytes();
      storage["oldest_undelivered"] = time_or_null(st.oldest_undelivered());
    } catch (const std::exception& e) {
      // A store_error, or anything else: answered all the same (a platform's diagnostics waits).
      storage["error"] = e.what();
    }
    asio::post(io_, [this, done = std::move(done), storage = std::move(storage), lanes]() mutable {
      // What the status message reports too (storage state, outbox, alarm counts), from one place.
      const auto h = hooks_.health(lanes);
      const auto link = hooks_.uplink();
      const auto* gb = hooks_.gb26875();
      storage["path"] = h.storage == "memory" ? ":memory:" : site_.storage.path;
      storage["state"] = h.storage;
      storage["max_bytes"] = site_.storage.max_size_mb << 20;
      storage["faults"] = h.storage_faults;
      json uplink{
          {"broker", site_.mqtt.host.empty() ? json(nullptr)
                                             : json(fmt::format("{}:{}", site_.mqtt.host, site_.mqtt.port))},
          {"tls", site_.mqtt.tls.has_value()},
          {"connected", link.connected},
          {"connects", h.uplink_connects},
          {"last_ack", time_or_null(link.last_ack)},
          {"ack_wait_s", link.ack_wait ? json(link.ack_wait->count()) : json(nullptr)},
          {"ack_timeouts", link.ack_timeouts},
          {"outbox", {{"alarm", h.outbox[0]}, {"event", h.outbox[1]}, {"telemetry", h.outbox[2]}}}};
      json buses = json::array();
      std::size_t online = 0;
      for (std::size_t i = 0; i < site_.buses.size(); ++i) {
        const auto counters =
            i < src_.drivers.size() ? src_.drivers[i]->counters() : std::vector<device_counters>{};
        const auto up = static_cast<std::size_t>(std::count_if(
            counters.begin(), counters.end(), [](const device_counters& c) { return c.online; }));
        online += up;
        json diagnostics = json::object();
        if (i < src_.drivers.size()) {
          for (auto& [key, value] : src_.drivers[i]->diagnostics()) diagnostics[key] = value;
        }
        buses.push_back({{"name", site_.buses[i].name},
                         {"driver", site_.buses[i].driver},
                         {"devices", counters.size()},
                         {"online", up},
                         {"offline", counters.size() - up},
                         {"diagnostics", std::move(diagnostics)}});
      }
      const auto& counts = h.alarms;
      json open = json::array();
      for (const auto& a : src_.rules.open_alarms()) open.push_back(open_alarm_json(a));
      json result{
          {"gateway",
           {{"id", site_.gateway.id},
            {"description", site_.gateway.description},
            {"version", FIREGATE_VERSION},
            {"pid", ::getpid()},
            {"started", iso8601(h.started)},
            {"uptime_s", static_cast<std::int64_t>(seconds_since(h.started, h.time))},
            {"config", config_path_.string()}}},
          {"site",
           {{"id", site_.site.id},
            {"name", site_.site.name},
            {"address", site_.site.address},
            {"category", site_.site.category}}},
          {"uplink", std::move(uplink)},
          {"gb26875", gb != nullptr ? gb->diagnostics() : json(nullptr)},
          {"storage", std::move(storage)},
          {"configuration", configuration_json(h.config)},
          {"clock", clock_json(h.wall_clock)},
          {"buses", std::move(buses)},
          {"devices",
           {{"total", site_.devices.size()}, {"online", online}, {"offline", site_.devices.size() - online}}},
          {"alarms",
           {{"fire", counts.fire},
            {"supervisory", counts.supervisory},
            {"fault", counts.fault},
            {"unacknowledged", counts.unacknowledged},
            {"test", counts.test},
            {"shielded_devices", counts.shielded},
            {"test_mode_devices", counts.in_test_mode},
            {"open", std::move(open)}}}};
      done(std::move(result));
    });
  });
}

json control_api::device_json(const device_counters& c) const {
  const auto* d = config::find_device(site_, c.device);
  const auto now = clock::now();
  std::string model, driver;
  for (const auto& bus : site_.buses) {
    if (bus.name != c.bus) continue;
    driver = bus.driver;
  }
  if (const auto* described = site_.catalogue.find(c.device)) model = described->model_name();
  const auto ms = [](std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1000.0; };
  json j{{"name", c.device},
         {"bus", c.bus},
         {"driver", driver},
         {"address", c.address},
         {"model", model},
         {"location", d ? d->location : ""},
         {"description", d ? d->description : ""},
         {"online", c.online},
         {"last_good", time_or_null(c.last_good)},
         {"last_good_age_s", c.last_good ? json(seconds_since(*c.last_good, now)) : json(nullptr)},
         {"polls", c.polls},
         {"requests", c.requests},
         {"responses", c.responses},
         {"timeouts", c.timeouts},
         {"crc_errors", c.crc_errors},
         {"exceptions", c.exceptions},
         {"malformed", c.malformed},
         {"connection_errors", c.connection_errors},
         {"writes", c.writes},
         {"write_failures", c.write_failures},
         {"consecutive_failures", c.consecutive_failures},
         {"messages", c.messages},
         {"duplicates", c.duplicates},
         {"rate_limited", c.rate_limited},
         {"response_ms",
          {{"last", ms(c.last_response_time)},
           {"mean", c.responses ? ms(c.total_response_time) / static_cast<double>(c.responses) : 0.0},
           {"max", ms(c.max_response_time)}}},
         {"last_error", c.last_error}};
  return j;
}

namespace {

/// Shields and test modes onto the devices' entries (one pass over what is open, not one a device).
void add_modes(json& devices, const std::vector<open_alarm>& open) {
  std::map<std::string, json*> by_name;
  for (auto& d : devices) by_name[d["name"].get<std::string>()] = &d;
  for (const auto& a : open) {
    auto it = by_name.find(a.device);
    if (it == by_name.end()) continue;
    if (a.kind == event_kind::device_shielded)
      (*it->second)["shielded_until"] = a.until ? iso8601(*a.until) : "";
    if (a.kind == event_kind::test_mode_started)
      (*it->second)["test_mode_until"] = a.until ? iso8601(*a.until) : "";
  }
}

}  // namespace

void control_api::devices(const session_ptr& s, const json& id, const std::string& device) {
  json list = json::array();
  std::optional<json> one;
  for (const auto& driver : src_.drivers) {
    for (const auto& c : driver->counters()) {
      if (device.empty()) {
        list.push_back(device_json(c));
      } else if (c.device == device) {
        one = device_json(c);
      }
    }
  }
  const auto open = src_.rules.open_alarms();
  if (device.empty()) {
    add_modes(list, open);
    s->send(reply(id, {{"devices", std::move(list)}}));
    return s->done();
  }
  if (!one) {
    s->send(refuse(id, "failed", fmt::format("{} is configured but its bus is not running", device)));
    return s->done();
  }
  json single = json::array({std::move(*one)});
  add_modes(single, open);
  one = std::move(single[0]);
  json alarms = json::array();
  for (const auto& a : open) {
    if (a.device == device) alarms.push_back(open_alarm_json(a));
  }
  (*one)["alarms"] = std::move(alarms);
  if (const auto* described = site_.catalogue.find(device)) (*one)["writable"] = described->writes();
  // The last values: the store's, then what was read since its last flush, as it is now (a flush may
  // take it to the store's thread behind this question: in neither then) and as it is at the answer.
  std::vector<reading> unflushed;
  std::copy_if(src_.unflushed.begin(), src_.unflushed.end(), std::back_inserter(unflushed),
               [&](const reading& r) { return r.device == device; });
  store_.post(
      [this, s, id, device, one = std::move(*one), unflushed = std::move(unflushed)](store& st) mutable {
        std::vector<reading> latest;
        std::string error;
        try {
          latest = st.latest_readings(device);
        } catch (const store_error& e) {
          error = e.what();
        }
        asio::post(io_, [this, s, id, device, one = std::move(one), latest = std::move(latest),
                         unflushed = std::move(unflushed), error]() mutable {
          keep_newest(latest, unflushed, device);
          keep_newest(latest, src_.unflushed, device);
          const auto now = clock::now();
          const auto* described = site_.catalogue.find(device);
          json values = json::array();
          for (const auto& r : latest) {
            values.push_back(reading_json(r, now));
            if (auto label = label_of(device, r.point, r.value); !label.empty())
              values.back()["label"] = label;
            // What the platform is sent of it (its report strategy): why it may not see every value.
            if (described != nullptr) values.back()["report"] = to_string(described->report(r.point));
          }
          one["values"] = std::move(values);
          // Each rule in force beside its point's value, and the device's own output and setting.
          if (described != nullptr) one["rules"] = rules_in_force(*described, latest);
          if (!error.empty()) one["values_error"] = error;
          s->send(reply(id, std::move(one)));
          s->done();
        });
      });
}

void control_api::alarms(const session_ptr& s, const json& id, const json& args) {
  const auto device = args.value("device", std::string());
  if (!device.empty()) {
    if (auto error = config::unknown_device(site_, device); !error.empty()) {
      s->send(refuse(id, "unknown_device", error));
      return s->done();
    }
  }
  if (!args.value("history", false)) {
    json open = json::array();
    for (const auto& a : src_.rules.open_alarms()) {
      if (device.empty() || a.device == device) open.push_back(open_alarm_json(a));
    }
    s->send(reply(id, {{"open", std::move(open)}}));
    return s->done();
  }
  std::string bad;
  const auto limit = whole_arg(args, "limit", 50, 1, 10000, bad);
  if (!limit) {
    s->send(refuse(id, "bad_request", bad));
    return s->done();
  }
  store_.post([this, s, id, device, limit = static_cast<std::size_t>(*limit)](store& st) {
    json out;
    try {
      json events = json::array();
      for (const auto& e : st.event_history(device, limit)) {
        events.push_back(event_summary(e));
      }
      out = reply(id, {{"history", std::move(events)}});
    } catch (const store_error& e) {
      out = refuse(id, "failed", fmt::format("the event history cannot be read: {}", e.what()));
    }
    asio::post(io_, [s, out = std::move(out)] {
      s->send(out);
      s->done();
    });
  });
}

void control_api::ack(const session_ptr& s, const json& id, json args) {
  auto given = args.value("alarm_id", std::string());
  std::transform(given.begin(), given.end(), given.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (auto problem = alarm_id_problem(given); !problem.empty()) {
    s->send(refuse(id, "bad_request", std::move(problem)));
    return s->done();
  }
  if (const auto* exact = open_alarm_exactly(src_.rules.open_alarms(), given);
      exact != nullptr && exact->kind != event_kind::bus_offline) {
    args["alarm_id"] = exact->id;
    return alarm_command(s, id, "ack", std::move(args));
  }
  // A prefix is unique only if no other alarm, open or past, starts with it; an alarm not open is
  // explained from its stored events (acknowledged, cleared, unknown), an escalation's id followed.
  store_.post([this, s, id, given, args = std::move(args)](store& st) mutable {
    std::optional<std::vector<event>> stored;
    std::string failed;
    try {
      stored = st.alarm_events(given);
    } catch (const store_error& e) {
      failed = e.what();
    }
    asio::post(io_,
               [this, s, id, given, stored = std::move(stored), failed, args = std::move(args)]() mutable {
                 if (!stored) {
                   s->send(refuse(id, "failed", fmt::format("the event history cannot be read: {}", failed)));
                   return s->done();
                 }
                 const auto target = resolve_ack(given, src_.rules.open_alarms(), *stored);
                 if (!target.alarm.empty()) {
                   args["alarm_id"] = target.alarm;
                   return alarm_command(s, id, "ack", std::move(args));
                 }
                 auto out = refuse(id, "refused", target.message);
                 out["state"] = target.state;
                 s->send(out);
                 s->done();
               });
  });
}

void control_api::alarm_command(const session_ptr& s, const json& id, const std::string& name, json args) {
  // The platform's command, checked by the same parser; who did it is the peer the kernel names.
  const auto given = args.value("by", std::string());
  if (given.size() > 32) {
    s->send(refuse(id, "bad_request", "\"by\" must be at most 32 characters"));
    return s->done();
  }
  std::chrono::seconds wait{0};
  if (name == "test_alarm") {
    std::string bad;
    const auto w = whole_arg(args, "wait_s", 120, 1, 3600, bad);
    if (!w) {
      s->send(refuse(id, "bad_request", bad));
      return s->done();
    }
    wait = std::chrono::seconds(*w);
    args.erase("wait_s");
  }
  args["by"] = local_actor(s->who(), given);
  // The platform's command forms checked the same way; issued now (a local request is not queued).
  const auto cmd = parse_command(json{
      {"id", "firegatectl"},
      {"command", name == "test_alarm" ? "self_test" : name},
      {"issued", iso8601(clock::now())},
      {"args", args}}.dump());
  if (!cmd.body) {
    s->send(refuse(id, "bad_request", cmd.error));
    return s->done();
  }
  if (const auto device = args.value("device", std::string()); !device.empty()) {
    if (auto error = config::unknown_device(site_, device); !error.empty()) {
      s->send(refuse(id, "unknown_device", error));
      return s->done();
    }
  }
  auto done = hooks_.carry_out(*cmd.body);
  if (!done.ok()) {
    spdlog::warn("control command refused command={} user={} error=\"{}\"", name, s->who().user, done.error);
    s->send(refuse(id, "refused", done.error));
    return s->done();
  }
  spdlog::info("control command done command={} user={} uid={} events={}", name, s->who().user, s->who().uid,
               done.events.size());
  json events = json::array();
  for (const auto& e : done.events) events.push_back(event_summary(e));
  if (name != "test_alarm") {
    s->send(reply(id, {{"events", std::move(events)}}));
    s->done();
  } else {
    // Answered when the platform acknowledges the alarm, or when the wait is over.
    const auto alarm_id = done.events.empty() ? std::string() : done.events.front().id;
    s->streaming();
    s->send({{"id", id},
             {"progress",
              {{"stage", "raised"},
               {"alarm_id", alarm_id},
               {"uplink_connected", hooks_.uplink().connected},
               {"wait_s", wait.count()}}}});
    auto deadline = std::make_shared<asio::steady_timer>(io_, wait);
    watchers_.push_back({s, id, {}, false, false, alarm_id, deadline, clock::now()});
    deadline->async_wait([this, deadline, wait](boost::system::error_code ec) {
      if (ec) return;
      auto it = std::find_if(watchers_.begin(), watchers_.end(),
                             [&](const watcher& w) { return w.deadline == deadline; });
      if (it == watchers_.end()) return;
      if (auto ss = it->session.lock()) {
        ss->send(
            refuse(it->id, "timeout",
                   fmt::format("the platform did not acknowledge test alarm {} within {} s; check the uplink "
                               "(firegatectl status) and ask the control room whether it arrived",
                               it->alarm_id, wait.count())));
        ss->done();
      }
      watchers_.erase(it);
    });
  }
  for (auto& e : done.events) hooks_.raise(std::move(e));
}

}  // namespace firegate
