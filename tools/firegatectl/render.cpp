#include "render.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace firegatectl {
using json = nlohmann::json;

namespace {

/// Display width of UTF-8 text (code points; Chinese characters counted as two columns).
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    w += len >= 3 ? 2 : 1;
    i += len;
  }
  return w;
}

std::string str(const json& j, const char* key) {
  return text(field(j, key));
}

}  // namespace

const json& field(const json& j, const char* key) {
  static const json missing;
  if (!j.is_object()) return missing;
  const auto it = j.find(key);
  return it == j.end() ? missing : *it;
}

void table::print(std::ostream& out) const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
  }
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - width(row[i]) + 2, ' ');
    }
    out << line << '\n';
  }
}

std::string text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) {
    const auto d = v.get<double>();
    if (d == std::floor(d) && std::fabs(d) < 1e15) return fmt::format("{:.0f}", d);
    return fmt::format("{:.6g}", d);
  }
  return v.dump();
}

std::string age(const json& seconds) {
  if (!seconds.is_number()) return "-";
  const auto s = static_cast<std::int64_t>(seconds.get<double>());
  if (s < 60) return fmt::format("{} s", std::max<std::int64_t>(s, 0));
  if (s < 3600) return fmt::format("{} min", s / 60);
  if (s < 86400) return fmt::format("{} h {:02} min", s / 3600, s % 3600 / 60);
  return fmt::format("{} d {} h", s / 86400, s % 86400 / 3600);
}

std::string mib(const json& bytes) {
  if (!bytes.is_number()) return "-";
  return fmt::format("{:.1f} MiB", bytes.get<double>() / (1 << 20));
}

void print_alarms(const json& open, std::ostream& out) {
  if (open.empty()) {
    out << "no open alarms\n";
    return;
  }
  table t({"ID", "TYPE", "DEVICE", "LOCATION", "SINCE", "ACKNOWLEDGED", "DETAIL"});
  for (const auto& a : open) {
    std::string ack = "no";
    if (a.contains("acknowledged") && field(a, "acknowledged").is_object()) {
      ack = fmt::format("{} by {}", text(field(field(a, "acknowledged"), "verdict")),
                        text(field(field(a, "acknowledged"), "by")));
    } else if (a.contains("until")) {
      ack = fmt::format("until {}", text(field(a, "until")));
    }
    auto type = str(a, "type");
    if (a.value("test", false)) type += " (test)";
    // The reading behind it, an enumerated value as what it means ("state = fire").
    auto detail = str(a, "detail");
    if (!str(a, "point").empty())
      detail = fmt::format("{} = {}: {}", str(a, "point"),
                           a.contains("value_label") ? str(a, "value_label") : str(a, "value"), detail);
    t.add(
        {str(a, "id").substr(0, 8), type, str(a, "device"), str(a, "location"), str(a, "time"), ack, detail});
  }
  t.print(out);
}

void print_history(const json& events, std::ostream& out) {
  if (events.empty()) {
    out << "no events stored\n";
    return;
  }
  // ALARM: the short id of the alarm each event raised or belongs to, for ack and for looking it up.
  table t({"SEQ", "TIME", "ALARM", "TYPE", "DEVICE", "DETAIL"});
  for (const auto& e : events) {
    auto type = str(e, "type");
    if (e.value("test", false)) type += " (test)";
    auto alarm = e.value("alarm_id", std::string());
    const auto category = e.value("category", std::string());
    if (alarm.empty() && (category == "fire" || category == "supervisory" || category == "fault"))
      alarm = e.value("id", std::string());
    t.add({str(e, "seq"), str(e, "time"), alarm.empty() ? "-" : alarm.substr(0, 8), type, str(e, "device"),
           str(e, "detail")});
  }
  t.print(out);
}

void print_status(const json& r, std::ostream& out) {
  const auto& g = field(r, "gateway");
  const auto& site = field(r, "site");
  const auto& up = field(r, "uplink");
  const auto& st = field(r, "storage");
  const auto& al = field(r, "alarms");
  out << fmt::format("gateway   {}  firegate {}  up {}  pid {}\n", text(field(g, "id")),
                     text(field(g, "version")), age(field(g, "uptime_s")), text(field(g, "pid")));
  out << fmt::format("site      {}  {} ({})  {}\n", text(field(site, "id")), text(field(site, "name")),
                     text(field(site, "category")), text(field(site, "address")));
  const auto& ob = field(up, "outbox");
  if (!field(up, "broker").is_null()) {
    out << fmt::format("uplink    {}  {}{}  last acknowledged {}  waiting: alarm {} event {} telemetry {}\n",
                       up.value("connected", false) ? "connected" : "DISCONNECTED", text(field(up, "broker")),
                       up.value("tls", false) ? " (TLS)" : "", text(field(up, "last_ack")),
                       text(field(ob, "alarm")), text(field(ob, "event")), text(field(ob, "telemetry")));
    // A slow or flapping link: the acknowledgement wait has been stretched past ack_timeout_s.
    if (up.value("ack_timeouts", 0) > 0) {
      out << fmt::format("          acknowledgement timeouts {} (each a reconnect)  wait now {} s\n",
                         text(field(up, "ack_timeouts")), text(field(up, "ack_wait_s")));
    }
  }
  if (const auto& gb = field(r, "gb26875"); gb.is_object()) {
    // The GB/T 26875.3 centre: the link, what is waiting, and an inspection check to answer.
    out << fmt::format(
        "gb26875   {}  centre {}  link {}  queued {}  sent {} confirmed {} resent {}  link faults {}  denied "
        "by "
        "centre {} (set aside {})  last confirm {}  clock offset {} ms\n",
        gb.value("connected", false) ? "connected" : "DISCONNECTED", text(field(gb, "centre")),
        text(field(gb, "link")), text(field(gb, "queued")), text(field(gb, "sent")),
        text(field(gb, "confirmed")), text(field(gb, "resent")), text(field(gb, "link_faults")),
        text(field(gb, "denied_by_centre")), text(field(gb, "set_aside")), text(field(gb, "last_confirm")),
        text(field(gb, "clock_offset_ms")));
    if (const auto& ins = field(gb, "inspection"); ins.is_object()) {
      out << fmt::format(
          "          INSPECTION CHECK from the centre at {}: the duty person answers within {} s with "
          "`firegatectl gb26875 answer`\n",
          text(field(ins, "asked")), text(field(ins, "seconds_left")));
    }
  }
  out << fmt::format("storage   {}  {} of {}  oldest undelivered {}  faults {}{}\n", text(field(st, "state")),
                     mib(field(st, "used_bytes")), mib(field(st, "max_bytes")),
                     text(field(st, "oldest_undelivered")), text(field(st, "faults")),
                     st.contains("error") ? "  error: " + text(field(st, "error")) : "");
  if (const auto& cf = field(r, "configuration"); cf.is_object()) {
    // The configuration in force, and a reload that was refused (the box runs an older one).
    out << fmt::format("config    revision {}  loaded {}{}\n", text(field(cf, "revision")),
                       text(field(cf, "loaded")),
                       cf.value("source", std::string()) == "platform" ? "  from the platform" : "");
    if (const auto& p = field(cf, "pending"); p.is_object()) {
      out << fmt::format(
          "          CHANGE {} FROM THE PLATFORM NOT YET CONFIRMED: rolled back at {} unless confirmed\n",
          text(field(p, "revision")), text(field(p, "rolled_back_at")));
    }
    if (const auto& rj = field(cf, "rejected"); rj.is_object()) {
      out << fmt::format(
          "          RELOAD REFUSED at {}: the file on disk is not what runs; fix it and reload\n",
          text(field(rj, "time")));
      for (const auto& e : rj.value("errors", json::array())) out << "            " << text(e) << '\n';
    }
  }
  if (const auto& ck = field(r, "clock"); ck.is_object()) {
    // Alarm times are evidence: whether the clock giving them is synchronised, and the platform's view.
    const auto& sync = field(ck, "synchronised");
    std::string state;
    if (sync.is_null()) {
      state = "state UNKNOWN (" + text(field(ck, "error")) + ")";
    } else if (sync.get<bool>()) {
      state = "synchronised";
      if (!field(ck, "max_error_ms").is_null())
        state += ", error at most " + text(field(ck, "max_error_ms")) + " ms";
    } else {
      state = "NOT SYNCHRONISED since " + text(field(ck, "unsynchronised_since"));
    }
    if (field(ck, "fault").is_string())
      state += "  (clock_unsynchronised fault " + text(field(ck, "fault")).substr(0, 8) + " open)";
    if (const auto& off = field(ck, "platform_offset_ms"); off.is_number()) {
      const auto ms = off.get<double>();
      state += fmt::format("  the platform's clock {} ms {} (measured {})", text(json(std::fabs(ms))),
                           ms < 0 ? "behind" : "ahead", text(field(ck, "platform_measured")));
    }
    out << "clock     " << state << '\n';
  }
  const auto& dv = field(r, "devices");
  out << fmt::format("devices   {} online, {} offline, of {}\n", text(field(dv, "online")),
                     text(field(dv, "offline")), text(field(dv, "total")));
  out << fmt::format(
      "alarms    fire {}  supervisory {}  fault {}  unacknowledged {}  test {}  shielded devices {}  "
      "test-mode devices {}\n\n",
      text(field(al, "fire")), text(field(al, "supervisory")), text(field(al, "fault")),
      text(field(al, "unacknowledged")), text(field(al, "test")), text(field(al, "shielded_devices")),
      text(field(al, "test_mode_devices")));
  table buses({"BUS", "DRIVER", "DEVICES", "ONLINE", "OFFLINE"});
  for (const auto& b : field(r, "buses")) {
    buses.add({str(b, "name"), str(b, "driver"), str(b, "devices"), str(b, "online"), str(b, "offline")});
  }
  buses.print(out);
  // What a bus's driver adds (an MQTT bus: its broker, unknown senders), one line each.
  for (const auto& b : field(r, "buses")) {
    const auto& diag = field(b, "diagnostics");
    if (!diag.is_object() || diag.empty()) continue;
    out << fmt::format("\n{} ({})\n", str(b, "name"), str(b, "driver"));
    for (const auto& [key, value] : diag.items()) out << fmt::format("  {:<26} {}\n", key, text(value));
  }
  out << '\n';
  print_alarms(field(al, "open"), out);
}

void print_devices(const json& r, std::ostream& out) {
  table t({"DEVICE", "MODEL", "BUS", "ADDRESS", "STATE", "LAST GOOD", "POLLS", "TIMEOUTS", "CRC",
           "EXCEPTIONS", "RESPONSE MS", "LOCATION"});
  for (const auto& d : field(r, "devices")) {
    std::string state = d.value("online", false) ? "online" : "OFFLINE";
    if (d.contains("shielded_until")) state += ", shielded";
    if (d.contains("test_mode_until")) state += ", test mode";
    t.add({str(d, "name"), str(d, "model"), str(d, "bus"), str(d, "address"), state,
           field(d, "last_good_age_s").is_null() ? "never" : age(field(d, "last_good_age_s")) + " ago",
           str(d, "polls"), str(d, "timeouts"), str(d, "crc_errors"), str(d, "exceptions"),
           fmt::format("{:.1f}", field(d, "response_ms").value("mean", 0.0)), str(d, "location")});
  }
  t.print(out);
}

void print_device(const json& d, std::ostream& out) {
  std::string state = d.value("online", false) ? "online" : "OFFLINE";
  if (d.contains("shielded_until")) state += ", shielded until " + text(field(d, "shielded_until"));
  if (d.contains("test_mode_until")) state += ", in test mode until " + text(field(d, "test_mode_until"));
  out << fmt::format("device       {} ({})\n", text(field(d, "name")), text(field(d, "model")));
  out << fmt::format("location     {}\n", text(field(d, "location")));
  if (d.contains("description") && !field(d, "description").get<std::string>().empty())
    out << fmt::format("description  {}\n", text(field(d, "description")));
  out << fmt::format("bus          {}  at {}\n", text(field(d, "bus")), text(field(d, "address")));
  // A device that sends messages (MQTT ingest) is not polled: its counters are about messages.
  const bool messages = d.value("driver", std::string()) == "mqtt";
  out << fmt::format(
      "state        {}  last good {} {}\n", state, messages ? "message" : "poll",
      field(d, "last_good_age_s").is_null() ? "never" : age(field(d, "last_good_age_s")) + " ago");
  if (messages) {
    out << fmt::format(
        "messages     received {}  repeated or late {}  over the rate limit {}  unreadable {}\n",
        str(d, "messages"), str(d, "duplicates"), str(d, "rate_limited"), str(d, "malformed"));
    if (!d.value("last_error", std::string()).empty())
      out << "last error   " << text(field(d, "last_error")) << '\n';
  } else {
    out << fmt::format(
        "counters     polls {}  requests {}  responses {}  timeouts {}  crc errors {}  exceptions {}  "
        "malformed {}  "
        "connection errors {}  writes {} (failed {})\n",
        str(d, "polls"), str(d, "requests"), str(d, "responses"), str(d, "timeouts"), str(d, "crc_errors"),
        str(d, "exceptions"), str(d, "malformed"), str(d, "connection_errors"), str(d, "writes"),
        str(d, "write_failures"));
    const auto& rt = field(d, "response_ms");
    out << fmt::format("response     last {:.1f} ms  mean {:.1f} ms  max {:.1f} ms\n", rt.value("last", 0.0),
                       rt.value("mean", 0.0), rt.value("max", 0.0));
    if (!d.value("last_error", std::string()).empty())
      out << "last error   " << text(field(d, "last_error")) << '\n';
  }
  if (d.contains("writable") && !field(d, "writable").empty()) {
    std::string w;
    for (const auto& x : field(d, "writable")) w += (w.empty() ? "" : ", ") + text(x);
    out << "writable     " << w << '\n';
  }
  out << '\n';
  table t({"POINT", "VALUE", "UNIT", "QUALITY", "AGE", "SENT TO THE PLATFORM"});
  for (const auto& v : field(d, "values")) {
    t.add({str(v, "point"),
           v.contains("label") ? fmt::format("{} ({})", text(field(v, "value")), text(field(v, "label")))
                               : str(v, "value"),
           str(v, "unit"), str(v, "quality"), age(field(v, "age_s")), str(v, "report")});
  }
  if (t.empty()) {
    out << "no values read yet\n";
  } else {
    t.print(out);
  }
  if (d.contains("values_error"))
    out << "(stored values unreadable: " << text(field(d, "values_error")) << ")\n";
  if (d.contains("rules") && !field(d, "rules").empty()) {
    // Each rule the gateway decides on, beside the value it watches and the device's own output.
    out << '\n';
    table rules({"RULE", "POINT", "NOW", "RULE IN FORCE", "DEVICE'S OWN"});
    std::vector<std::string> notes;
    for (const auto& r : field(d, "rules")) {
      std::string in_force = str(r, "when");
      if (r.contains("set")) {
        in_force = fmt::format("{} {}", str(r, "when") == "low" ? "<=" : ">=", text(field(r, "set")));
        in_force += str(r, "from") == "site"
                        ? (r.contains("profile_set")
                               ? fmt::format(" (site; profile {})", text(field(r, "profile_set")))
                               : std::string(" (site)"))
                        : " (profile)";
      } else if (str(r, "from") == "site") {
        in_force += " (site)";
      }
      if (!r.value("enabled", true)) in_force = "off (site)";
      std::string own = "-";
      if (r.contains("device_alarm")) {
        const auto& a = field(r, "device_alarm");
        own = fmt::format("{} = {}", str(a, "point"), text(field(a, "value")));
        if (r.contains("device_setting"))
          own += fmt::format(", setting {}", text(field(field(r, "device_setting"), "value")));
      }
      rules.add({str(r, "name"), str(r, "point"), r.contains("value") ? text(field(r, "value")) : "-",
                 in_force, own});
      if (r.contains("note")) notes.push_back(fmt::format("{}: {}", str(r, "name"), str(r, "note")));
    }
    rules.print(out);
    for (const auto& n : notes) out << "note  " << n << '\n';
  }
  out << '\n';
  print_alarms(field(d, "alarms"), out);
}

void print_tail_line(const json& line, std::ostream& out) {
  if (line.contains("reading")) {
    const auto& r = field(line, "reading");
    out << fmt::format("{}  {}  {} = {}{}{}\n", text(field(r, "time")), text(field(r, "device")),
                       text(field(r, "point")),
                       r.contains("label") ? text(field(r, "label")) + " (" + text(field(r, "value")) + ")"
                                           : text(field(r, "value")),
                       r.value("unit", std::string()).empty() ? "" : " " + text(field(r, "unit")),
                       r.value("quality", std::string()) == "good" ? "" : "  (bad quality)");
  } else if (line.contains("event")) {
    const auto& e = field(line, "event");
    // The reading behind it, an enumerated value as what it means, and the alarm's evidence.
    std::string reading;
    if (!e.value("point", std::string()).empty()) {
      reading =
          fmt::format("  {} = {}", text(field(e, "point")),
                      e.contains("value_label") ? text(field(e, "value_label")) : text(field(e, "value")));
    }
    for (const auto& x : e.value("evidence", json::array())) {
      reading += fmt::format("{}{} = {}{}", reading.find(" [") == std::string::npos ? "  [" : ", ",
                             text(field(x, "name")),
                             x.contains("label") ? text(field(x, "label")) : text(field(x, "value")),
                             x.value("unit", std::string()).empty() ? "" : " " + text(field(x, "unit")));
    }
    if (e.contains("evidence") && !field(e, "evidence").empty()) reading += "]";
    out << fmt::format("{}  EVENT {}{}  {}{}  {}\n", text(field(e, "time")), text(field(e, "type")),
                       e.value("test", false) ? " (test)" : "", text(field(e, "device")), reading,
                       text(field(e, "detail")));
  } else if (line.contains("dropped")) {
    out << fmt::format("... {} lines dropped: this terminal reads slower than the gateway writes\n",
                       text(field(line, "dropped")));
  }
  out.flush();
}

void print_config(const json& r, std::ostream& out) {
  // TOML that firegated loads as this same configuration (firegated --check-config passes it): each
  // value as the site file writes it; what is only shown (a secret redacted, a value worked out
  // from others, a key left unset) as a comment.
  // A key as TOML writes it: bare when it can be, else quoted ("supply voltage").
  const auto toml_key = [](const std::string& k) {
    const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '_' || c == '-';
    });
    return bare ? k : json(k).dump();
  };
  const auto line = [&](const std::string& key, const json& v) {
    if (v.is_null()) {
      out << "# " << key << " is not set\n";
    } else if (v.is_string() && v.get<std::string>() == "(redacted)") {
      out << "# " << key << " = (redacted): a secret, not shown; set it again in a copy\n";
    } else {
      out << toml_key(key) << " = " << v.dump() << '\n';
    }
  };
  const auto keys = [&](const json& obj, std::initializer_list<const char*> skip = {}) {
    for (const auto& [k, v] : obj.items()) {
      if (v.is_object() || std::find(skip.begin(), skip.end(), k) != skip.end()) continue;
      line(k, v);
    }
  };
  const auto derived = [&](const json& obj) {
    for (const auto& [k, v] : obj.items()) {
      auto text = v.is_string() ? v.get<std::string>() : v.dump();
      std::replace(text.begin(), text.end(), '\n', ' ');  // one comment line
      out << "# " << k << ": " << text << '\n';
    }
  };
  const auto section = [&](const std::string& name, const json& obj) {
    out << '[' << name << "]\n";
    keys(obj);
    if (obj.contains("derived")) derived(obj["derived"]);
    out << '\n';
    for (const auto& [k, v] : obj.items()) {
      if (!v.is_object() || k == "derived") continue;
      out << '[' << name << '.' << k << "]\n";
      for (const auto& [k2, v2] : v.items()) {
        // An empty TLS file is one not given: left out, as the site file leaves it out.
        if (k == "tls" && v2.is_string() && v2.get<std::string>().empty()) continue;
        line(k2, v2);
      }
      out << '\n';
    }
  };
  out << "# the running configuration of firegated, defaults included, secrets redacted\n";
  out << "# read from " << text(field(r, "file")) << "\n\n";
  for (const char* s : {"profiles", "gateway", "site", "storage", "alarms", "control", "metrics", "remote"}) {
    if (r.contains(s)) section(s, r[s]);
  }
  const auto& uplinks = field(r, "uplink");
  if (const auto& mqtt = field(uplinks, "mqtt"); mqtt.is_object() && !mqtt.value("host", "").empty())
    section("uplink.mqtt", mqtt);
  if (const auto& gb = field(uplinks, "gb26875"); gb.is_object()) section("uplink.gb26875", gb);
  for (const char* arr : {"buses", "devices", "linkage"}) {
    for (const auto& item : r[arr]) {
      out << "[[" << arr << "]]\n";
      for (const auto& [k, v] : item.items()) {
        if (k == "settings" || k == "derived" || k == "rules" || k == "report") continue;
        if (std::string(arr) == "linkage" && ((k == "rule" && v == "") || v.is_null()))
          continue;  // not given
        line(k, v);
      }
      if (item.contains("settings")) keys(item["settings"]);
      if (item.contains("derived")) derived(item["derived"]);
      out << '\n';
      // A driver's own tables (an MQTT bus's [tls]).
      for (const auto& [k, v] : field(item, "settings").items()) {
        if (!v.is_object()) continue;
        out << '[' << arr << '.' << toml_key(k) << "]\n";
        for (const auto& [k2, v2] : v.items()) line(k2, v2);
        out << '\n';
      }
      // The site's changes to the profile's rules and report strategies, as they are in force.
      for (const char* sub : {"rules", "report"}) {
        if (!item.contains(sub)) continue;
        for (const auto& [name, table] : item[sub].items()) {
          out << "[devices." << sub << '.' << toml_key(name) << "]\n";
          for (const auto& [k, v] : table.items()) line(k, v);
          out << '\n';
        }
      }
    }
  }
}

void print_config_history(const json& r, std::ostream& out) {
  const auto rev = [](const json& v) {
    const auto t = v.is_string() ? v.get<std::string>() : std::string();
    return t.empty() ? std::string("site file") : t.substr(0, 12);
  };
  out << fmt::format("in force  {}  ({})\n", rev(field(r, "in_force")), text(field(r, "source")));
  if (const auto& p = field(r, "pending"); p.is_object()) {
    out << fmt::format(
        "WAITING   change {} by {} applied {}: rolled back at {} unless the platform confirms it\n",
        rev(field(p, "revision")), text(field(p, "by")), text(field(p, "applied")),
        text(field(p, "rolled_back_at")));
  }
  out << fmt::format("kept in   {}\n\n", text(field(r, "dir")));
  table changes({"TIME", "ACTION", "REVISION", "PREVIOUS", "BY", "WHY / WHAT CHANGED"});
  for (const auto& c : field(r, "changes")) {
    const auto why = c.value("reason", std::string());
    changes.add({str(c, "time"), str(c, "action"), rev(field(c, "revision")), rev(field(c, "previous")),
                 str(c, "by"), why.empty() ? c.value("diff", std::string()) : why});
  }
  changes.print(out);
  if (field(r, "changes").empty()) out << "no change from the platform yet\n";
}

}  // namespace firegatectl
