// The control API's streaming and bus-side requests (docs/control-api.md): tail and the test
// alarm's wait (watchers fed from the data path), export a page at a time, raw registers and scans
// through the bus's driver, and the running configuration. The rest is app/control_api.cpp.

#include "control_api.hpp"
#include "control_json.hpp"

#include "config/suggest.hpp"
#include "modbus/modbus_error.hpp"
#include "uplink/mqtt/commands.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cmath>

namespace firegate {
namespace asio = boost::asio;
using json = nlohmann::json;
using control::refuse;
using control::reply;
using namespace control_json;

namespace {

std::string endless_busy() {
  return fmt::format(
      "{} tails and exports are open already; the other connections are kept for commands (ack, shield, "
      "status): end a tail (Ctrl-C) and try again",
      control::max_streams);
}

}  // namespace

void control_api::tail(const session_ptr& s, const json& id, const json& args) {
  const auto device = args.value("device", std::string());
  if (!device.empty()) {
    if (auto error = config::unknown_device(site_, device); !error.empty()) {
      s->send(refuse(id, "unknown_device", error));
      return s->done();
    }
  }
  const bool readings = args.value("readings", true), events = args.value("events", true);
  if (!s->open_stream()) {
    s->send(refuse(id, "busy", endless_busy()));
    return s->done();
  }
  s->send({{"id", id}, {"progress", {{"stage", "tailing"}, {"device", device}}}});
  watchers_.push_back({s, id, device, readings, events, {}, nullptr, clock::now()});
}

void control_api::prune_watchers() {
  std::erase_if(watchers_,
                [](const watcher& w) { return w.session.expired() || w.session.lock()->closed(); });
}

void control_api::keep_newest(std::vector<reading>& latest, std::span<const reading> from,
                              const std::string& device) {
  for (const auto& r : from) {
    if (r.device != device) continue;
    auto it =
        std::find_if(latest.begin(), latest.end(), [&](const reading& x) { return x.point == r.point; });
    if (it == latest.end()) {
      latest.push_back(r);
    } else if (r.time >= it->time) {
      *it = r;
    }
  }
}

void control_api::on_readings(std::span<const reading> readings) {
  if (watchers_.empty() || readings.empty()) return;
  const auto now = clock::now();
  prune_watchers();
  for (const auto& w : watchers_) {
    if (!w.readings || (!w.device.empty() && w.device != readings.front().device)) continue;
    auto s = w.session.lock();
    for (const auto& r : readings) {
      auto j = reading_json(r, now);
      if (auto label = label_of(r.device, r.point, r.value); !label.empty()) j["label"] = label;
      s->send({{"id", w.id}, {"reading", std::move(j)}}, true);
    }
  }
}

void control_api::on_event(const event& e) {
  if (watchers_.empty()) return;
  prune_watchers();
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    auto s = it->session.lock();
    if (!it->alarm_id.empty()) {
      // A test alarm: ended by the platform's acknowledgement.
      if (e.alarm_id == it->alarm_id && e.kind == event_kind::alarm_acknowledged) {
        s->send(reply(it->id, {{"alarm_id", it->alarm_id},
                               {"acknowledged_by", e.actor},
                               {"verdict", e.verdict},
                               {"seconds", seconds_since(it->started, clock::now())}}));
        s->done();
        it->deadline->cancel();
        it = watchers_.erase(it);
        continue;
      }
    } else if (it->events && (it->device.empty() || it->device == e.device)) {
      s->send({{"id", it->id}, {"event", event_summary(e)}});
    }
    ++it;
  }
}

namespace {

/// The rules of a device that the site changed from its profile's, each with the keys a site sets
/// in [devices.rules.NAME], as they are in force: what the gateway decides on, written so that the
/// output loads as the same configuration.
json rule_overrides(const device_description& d) {
  json out = json::object();
  for (const auto& r : *d.rules) {
    const auto* base = d.profile_rule(r.name);
    if (base == nullptr || *base == r) continue;
    json o = json::object();
    const auto &c = r.condition, &b = base->condition;
    if (c.set != b.set || c.clear != b.clear) {
      o["set"] = c.set;
      o["clear"] = c.clear;
    }
    if (c.delay != b.delay) o["delay_ms"] = c.delay.count();
    if (c.samples != b.samples) o["samples"] = c.samples;
    if (r.enabled != base->enabled) o["enabled"] = r.enabled;
    if (r.latch != base->latch) o["latch"] = r.latch;
    out[r.name] = std::move(o);
  }
  return out;
}

/// A report strategy with the keys of [devices.report.POINT] (a whole strategy: `on` first).
json report_json(const report_policy& p) {
  json o{{"on", p.on == report_policy::mode::change ? "change" : "poll"}};
  if (p.on == report_policy::mode::change && (p.deadband != 0 || p.deadband_percent))
    o[p.deadband_percent ? "deadband_percent" : "deadband"] = p.deadband;
  if (p.at_most_every.count() > 0) o["at_most_every_s"] = p.at_most_every.count();
  if (p.at_least_every.count() > 0) o["at_least_every_s"] = p.at_least_every.count();
  return o;
}

/// The points whose strategy the site set apart from the profile's.
json report_overrides(const device_description& d) {
  json out = json::object();
  if (!d.reports) return out;
  for (const auto& point : d.points()) {
    if (const auto& p = d.report(point.name); !(p == point.report)) out[point.name] = report_json(p);
  }
  return out;
}

}  // namespace

json control_api::config_json() const {
  json buses = json::array();
  for (const auto& b : site_.buses) {
    json bus{{"name", b.name}, {"driver", b.driver}};
    if (b.settings) put_settings(bus, b.settings->summary());
    buses.push_back(std::move(bus));
  }
  json devices = json::array();
  for (const auto& d : site_.devices) {
    json dev{{"name", d.name}, {"bus", d.bus}, {"location", d.location}, {"description", d.description}};
    if (d.gb26875_address) dev["gb26875_address"] = *d.gb26875_address;
    for (const auto& b : site_.buses) {
      if (b.name == d.bus && b.settings) put_settings(dev, b.settings->device_summary(d.name));
    }
    if (const auto* described = site_.catalogue.find(d.name)) {
      if (auto rules = rule_overrides(*described); !rules.empty()) dev["rules"] = std::move(rules);
      if (auto reports = report_overrides(*described); !reports.empty()) dev["report"] = std::move(reports);
    }
    devices.push_back(std::move(dev));
  }
  json linkages = json::array();
  for (const auto& l : site_.linkages) {
    linkages.push_back({{"name", l.name},
                        {"on", to_string(l.on)},
                        {"devices", l.devices},
                        {"rule", l.rule},
                        {"device", l.device},
                        {"write", l.write},
                        {"value", l.value},
                        {"reset_value", l.reset_value ? json(*l.reset_value) : json(nullptr)}});
  }
  const auto redacted = [](const std::string& secret) {
    return secret.empty() ? json("") : json("(redacted)");
  };
  json mqtt{{"host", site_.mqtt.host},
            {"port", site_.mqtt.port},
            {"client_id", site_.mqtt.client_id},
            {"topic_prefix", site_.mqtt.topic_prefix},
            {"keepalive_s", site_.mqtt.keepalive.count()},
            {"ack_timeout_s", site_.mqtt.ack_timeout.count()},
            {"telemetry", site_.mqtt.telemetry},
            {"max_in_flight", site_.mqtt.max_in_flight},
            {"telemetry_rate", static_cast<std::int64_t>(site_.mqtt.telemetry_rate)},
            {"telemetry_batch", site_.mqtt.telemetry_batch},
            {"username", site_.mqtt.username},
            {"password", redacted(site_.mqtt.password)},
            {"heartbeat_s", site_.mqtt.heartbeat.count()},
            {"commands", site_.mqtt.commands},
            {"command_max_age_s", site_.mqtt.command_max_age.count()},
            {"max_message_bytes", site_.mqtt.max_message_bytes}};
  if (!site_.mqtt.command_key_file.empty()) mqtt["command_key_file"] = site_.mqtt.command_key_file;
  if (site_.mqtt.tls) {
    const auto& t = *site_.mqtt.tls;
    mqtt["tls"] = {{"ca_file", t.ca_file},
                   {"ca_path", t.ca_path},
                   {"cert_file", t.cert_file},
                   {"key_file", t.key_file},
                   {"key_password", redacted(t.key_password)},
                   {"verify", t.verify}};
  }
  json uplinks{{"mqtt", std::move(mqtt)}};
  if (const auto& g = site_.gb26875) {
    uplinks["gb26875"] = {{"host", g->host},
                          {"port", g->port},
                          {"uitd_address", g->uitd_address},
                          {"centre_address", g->centre_address},
                          {"system_type", g->system_type},
                          {"system_address", g->system_address},
                          {"confirm_timeout_s", g->confirm_timeout.count()},
                          {"retries", g->retries},
                          {"heartbeat_s", g->heartbeat.count()},
                          {"heartbeat_abnormal_s", g->heartbeat_abnormal.count()},
                          {"analog_interval_s", g->analog_interval.count()},
                          {"clock_max_step_s", g->clock_max_step.count()}};
  }
  return {{"file", config_path_.string()},
          {"profiles", {{"dir", site_.profiles_dir}, {"shipped", site_.shipped_profiles_dir}}},
          {"gateway", {{"id", site_.gateway.id}, {"description", site_.gateway.description}}},
          {"site",
           {{"id", site_.site.id},
            {"name", site_.site.name},
            {"address", site_.site.address},
            {"category", site_.site.category},
            {"latitude", site_.site.latitude},
            {"longitude", site_.site.longitude},
            {"responsible", {{"name", site_.site.responsible.name}, {"phone", site_.site.responsible.phone}}},
            {"backup", {{"name", site_.site.backup.name}, {"phone", site_.site.backup.phone}}}}},
          {"storage",
           {{"path", site_.storage.path},
            {"flush_interval_ms", site_.storage.flush_interval.count()},
            {"max_size_mb", site_.storage.max_size_mb},
            {"max_age_days", site_.storage.max_age.count() / 24}}},
          {"alarms",
           {{"escalate_after_s", site_.alarms.escalate_after.count()},
            {"false_alarms_per_day", site_.alarms.false_alarm_limit},
            {"shield_max_hours", site_.alarms.shield_max.count() / 60},
            {"clock_fault_after_s", site_.alarms.clock_fault_after.count()},
            {"clock_check_s", site_.alarms.clock_check.count()},
            {"clock_source", site_.alarms.clock == clock_source::kernel      ? "kernel"
                             : site_.alarms.clock == clock_source::timedated ? "timedated"
                                                                             : "auto"}}},
          {"uplink", std::move(uplinks)},
          {"control",
           {{"enabled", site_.control.enabled},
            {"socket", site_.control.socket},
            {"group", site_.control.group},
            {"idle_timeout_s", site_.control.idle_timeout.count()}}},
          {"metrics", {{"enabled", site_.metrics.enabled}, {"listen", site_.metrics.listen()}}},
          {"remote", {{"confirm_s", site_.remote.confirm.count()}, {"dir", site_.remote.dir}}},
          {"buses", std::move(buses)},
          {"devices", std::move(devices)},
          {"linkage", std::move(linkages)}};
}

void control_api::registers(const session_ptr& s, const json& id, const std::string& name, const json& args) {
  const auto bus_name = args.value("bus", std::string());
  std::optional<std::size_t> bus;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < site_.buses.size(); ++i) {
    names.push_back(site_.buses[i].name);
    if (site_.buses[i].name == bus_name && i < src_.drivers.size()) bus = i;
  }
  if (!bus) {
    s->send(refuse(id, "unknown_bus",
                   fmt::format("no bus \"{}\" on this gateway;{} its buses: {}", bus_name,
                               config::did_you_mean(bus_name, names), fmt::join(names, ", "))));
    return s->done();
  }
  // Checked as JSON before any conversion: 4294967297 is not unit 1, 1e300 is not a count.
  std::string bad;
  const auto number = [&](const char* key, std::optional<std::int64_t> fallback, std::int64_t min,
                          std::int64_t max) {
    const auto v = whole_arg(args, key, fallback, min, max, bad);
    return static_cast<int>(v.value_or(min));
  };
  if (name == "scan") {
    const int first = number("from", 1, 1, 247), last = number("to", 32, 1, 247);
    if (!bad.empty()) {
      s->send(refuse(id, "bad_request", bad));
      return s->done();
    }
    if (first > last) {
      s->send(
          refuse(id, "bad_request", fmt::format("scan units 1–247, from before to; not {}–{}", first, last)));
      return s->done();
    }
    spdlog::info("control scan bus={} units={}-{} user={}", bus_name, first, last, s->who().user);
    s->streaming();
    return scan_unit(s, id, *bus, first, last, json::array());
  }
  register_request r;
  const int unit = number("unit", std::nullopt, 1, 247), address = number("address", std::nullopt, 0, 65535),
            count = number("count", 1, 1, 2000);
  if (!bad.empty()) {
    s->send(refuse(id, "bad_request", bad));
    return s->done();
  }
  r.unit = static_cast<std::uint8_t>(unit);
  r.address = static_cast<std::uint16_t>(address);
  r.count = static_cast<std::uint16_t>(count);
  r.table = args.value("table", std::string("holding"));
  if (r.table != "holding" && r.table != "input" && r.table != "coil" && r.table != "discrete") {
    s->send(refuse(id, "bad_request",
                   fmt::format("no Modbus table \"{}\": holding, input, coil or discrete", r.table)));
    return s->done();
  }
  if (name == "write" && (r.table == "input" || r.table == "discrete")) {
    // Refused before it is logged as a write: Modbus has no function that writes these tables.
    s->send(refuse(id, "bad_request", modbus::read_only_table(r.table)));
    return s->done();
  }
  bool force = false;
  std::string held, forced_device;
  std::vector<std::pair<std::string, std::string>> forced_outputs;
  if (name == "write") {
    const auto values = args.find("values");
    if (values == args.end() || !values->is_array() || values->empty()) {
      s->send(
          refuse(id, "bad_request", "a write needs \"values\": the registers (or coils, 0 or 1) to write"));
      return s->done();
    }
    for (const auto& v : *values) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 65535) {
        s->send(refuse(id, "bad_request", fmt::format("a register holds 0–65535, not {}", v.dump())));
        return s->done();
      }
      r.values.push_back(v.get<std::uint16_t>());
    }
    // An output that open alarms hold (a sounder in a fire) is not switched by hand by mistake.
    std::vector<std::string> holding;
    std::string outputs;
    std::string output_device;
    if (const auto& settings = site_.buses[*bus].settings) {
      for (const auto& [device, write] :
           settings->writables_at(r.unit, r.table, r.address, static_cast<std::uint16_t>(r.values.size()))) {
        for (const auto& h : src_.linkage.holders(device, write)) {
          holding.push_back(fmt::format("{} of {} ({})", to_string(h.kind), h.device, h.alarm_id));
        }
        if (src_.linkage.holders(device, write).empty()) continue;
        forced_outputs.emplace_back(device, write);
        outputs += fmt::format("{}{}.{}", outputs.empty() ? "" : ", ", device, write);
        if (output_device.empty()) output_device = device;
      }
    }
    force = args.value("force", false) && !holding.empty();
    if (!holding.empty() && !force) {
      spdlog::warn(
          "control raw write refused bus={} unit={} table={} address={} outputs={} user={} uid={} "
          "reason=\"open alarms hold the output\"",
          bus_name, unit, r.table, address, outputs, s->who().user, s->who().uid);
      s->send(refuse(id, "held",
                     fmt::format("{} is held by open alarms through the site's linkage: {}; it is released "
                                 "when they end; to switch it anyway, add --force (logged and reported to "
                                 "the platform)",
                                 outputs, fmt::join(holding, ", "))));
      return s->done();
    }
    held = fmt::format("{} held by {}", outputs, fmt::join(holding, ", "));
    forced_device = output_device;
    // A raw write bypasses the profiles' checks: who did it is in the log.
    spdlog::warn("control raw write bus={} unit={} table={} address={} values={} user={} uid={}{}", bus_name,
                 unit, r.table, address, values->dump(), s->who().user, s->who().uid,
                 force ? fmt::format(" forced=true outputs={}", outputs) : std::string());
  }
  const auto who = local_actor(s->who(), args.value("by", std::string()));
  const auto unit_device = device_at(*bus, unit);
  src_.drivers[*bus]->transact(r, [this, s, id, r, bus_name, force, held, who, forced_device, forced_outputs,
                                   unit_device](const register_reply& answer) {
    // No answer (a timeout, a lost connection): the device may have taken the write all the same.
    const bool unsure = answer.error == modbus::modbus_errc::timeout ||
                        answer.error == modbus::modbus_errc::connection_closed;
    if (!force && (!answer.error || unsure) && !r.values.empty()) {
      // A raw write bypasses the profiles' checks (a changed alarm setting, a relay switched): the
      // platform hears of it with who did it, not only this box's log.
      event e;
      e.id = hooks_.new_event_id();
      e.kind = event_kind::register_written;
      e.device = unit_device.empty() ? bus_name : unit_device;
      e.time = clock::now();
      e.actor = who;
      e.value = r.values.front();
      e.detail = fmt::format("{} wrote {} unit {} {} {} = {} by hand (firegatectl write){}", who, bus_name,
                             r.unit, r.table, r.address, fmt::join(r.values, " "),
                             unsure ? fmt::format("; the device did not answer ({}): it may or may not have "
                                                  "taken the write",
                                                  answer.error.message())
                                    : std::string());
      hooks_.raise(std::move(e));
    }
    if (force && !answer.error) {
      // The linkage no longer knows the output to be at its value: asserted again on its next chance.
      for (const auto& [device, write] : forced_outputs)
        src_.linkage.written(device, write, std::nan(""), false);
      // Forced over a linkage: the platform is told who switched what the alarms were holding.
      event e;
      e.id = hooks_.new_event_id();
      e.kind = event_kind::linkage_overridden;
      e.device = forced_device;
      e.time = clock::now();
      e.actor = who;
      e.detail = fmt::format("{} wrote {} unit {} {} {} = {} by hand (firegatectl write --force) while {}",
                             who, bus_name, r.unit, r.table, r.address, fmt::join(r.values, " "), held);
      hooks_.raise(std::move(e));
    }
    if (answer.error) {
      s->send(refuse(id, "failed",
                     fmt::format("{} unit {} {} {}: {}{}", bus_name, r.unit, r.table, r.address,
                                 answer.detail.empty() ? answer.error.message() : answer.detail,
                                 answer.error == std::errc::host_unreachable
                                     ? "; the bus cannot be opened now: check its cable or server"
                                     : "")));
    } else {
      s->send(reply(id, {{"bus", bus_name},
                         {"unit", r.unit},
                         {"table", r.table},
                         {"address", r.address},
                         {"values", r.values.empty() ? json(answer.values) : json(r.values)},
                         {"written", !r.values.empty()},
                         {"ms", static_cast<double>(answer.time.count()) / 1000.0}}));
    }
    s->done();
  });
}

void control_api::scan_unit(session_ptr s, json id, std::size_t bus, int unit, int last, json found) {
  if (s->closed() || stopping_ || bus >= src_.drivers.size()) return;
  src_.drivers[bus]->identify(
      static_cast<std::uint8_t>(unit),
      [this, s, id, bus, unit, last, found = std::move(found)](unit_identity u) mutable {
        if (stopping_ || bus >= site_.buses.size()) return;
        json line{{"unit", unit}, {"answered", u.answered}, {"profiles", u.profiles}, {"detail", u.detail}};
        // The configured device at that address, if any: a scan finds strays and misaddressed units.
        if (auto configured = device_at(bus, unit); !configured.empty()) line["configured"] = configured;
        s->send({{"id", id}, {"scanned", line}});
        if (u.answered) found.push_back(std::move(line));
        if (unit < last) return scan_unit(s, id, bus, unit + 1, last, std::move(found));
        s->send(reply(id, {{"bus", site_.buses[bus].name}, {"answered", std::move(found)}}));
        s->done();
      });
}

void control_api::export_readings(const session_ptr& s, const json& id, const json& args) {
  const auto from = parse_iso8601(args.value("from", std::string()));
  const auto to = parse_iso8601(args.value("to", std::string()));
  if (!from || !to || *to <= *from) {
    s->send(refuse(id, "bad_request",
                   "\"from\" and \"to\" must be ISO 8601 times with their offset, \"from\" before \"to\", "
                   "such as 2026-11-27T08:00:00+08:00"));
    return s->done();
  }
  const auto device = args.value("device", std::string());
  if (!device.empty()) {
    if (auto error = config::unknown_device(site_, device); !error.empty()) {
      s->send(refuse(id, "unknown_device", error));
      return s->done();
    }
  }
  if (!s->open_stream()) {
    s->send(refuse(id, "busy", endless_busy()));
    return s->done();
  }
  // What is still in memory is written first, so that the export covers up to now.
  hooks_.flush();
  export_page(s, id, *from, *to, device, 0, 0);
}

void control_api::export_page(session_ptr s, json id, clock::time_point from, clock::time_point to,
                              std::string device, std::int64_t after, std::uint64_t sent) {
  if (s->closed() || stopping_) return;
  // A page at a time, and only once the client has read the last: memory stays bounded however
  // long the window, and the store's thread is never held for long.
  if (s->queued_bytes() > 1024 * 1024) {
    auto wait = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
    wait->async_wait([this, wait, s, id, from, to, device, after, sent](boost::system::error_code) {
      export_page(s, id, from, to, device, after, sent);
    });
    return;
  }
  store_.post([this, s, id, from, to, device, after, sent](store& st) {
    std::optional<store::readings_page> page;
    std::string error;
    try {
      page = st.readings_between_times(from, to, device, after, 2000);
    } catch (const store_error& e) {
      error = e.what();
    }
    asio::post(io_, [this, s, id, from, to, device, sent, page = std::move(page), error]() mutable {
      if (!page) {
        s->send(refuse(id, "failed", fmt::format("the readings cannot be read: {}", error)));
        return s->done();
      }
      json rows = json::array();
      for (const auto& r : page->readings) {
        rows.push_back(
            {iso8601(r.time), r.device, r.point, r.value, r.unit, r.q == quality::good ? "good" : "bad"});
      }
      sent += page->readings.size();
      if (!rows.empty()) s->send({{"id", id}, {"rows", std::move(rows)}});
      if (page->more) return export_page(s, id, from, to, device, page->next, sent);
      s->send(reply(id, {{"rows", sent}}));
      s->done();
    });
  });
}

}  // namespace firegate
