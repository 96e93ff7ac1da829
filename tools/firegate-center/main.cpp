// firegate-center: a reference receiver for the platform side. Subscribes to a broker and prints each
// alert as a control-room operator wants to read it: what, where, which place, who to call.
// With --auto-ack it acknowledges each alarm after a delay, as an operator would after the phone
// call (the ack command on the gateway's cmd topic; a gateway's self-test alarm as a test), and
// prints the gateway's replies. Gateways' presence (the retained status topic) is shown as they come
// and go. --self-test asks a gateway for
// its end-to-end self-test and acknowledges the test alarm as a test when it arrives.
//
// The operator's console: each alert that can be acknowledged gets a number (#1, #2...), and lines
// typed on standard input act on them as a control room does: `ack N real|false|test`,
// `shield DEVICE 2h [REASON]`, `unshield DEVICE`, `list`, `help`.

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <mqtt/async_client.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <poll.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <ctime>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace {

/// Now as a command's "issued" time (UTC, ISO 8601): the gateway refuses commands older than its
/// command_max_age_s.
std::string issued_now() {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", fmt::gmtime(std::time(nullptr)));
}

/// A part of a command id no other run of this program repeats (the gateway remembers ids for days,
/// and a process id comes round again).
const std::string& unique_suffix() {
  static const std::string suffix = [] {
    std::random_device random;
    return fmt::format("{:08x}{:08x}", random(), random());
  }();
  return suffix;
}

}  // namespace

namespace {

std::atomic<bool> stop_requested{false};
void on_signal(int) {
  stop_requested = true;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// An alert the operator can act on by its number.
struct alert {
  std::string cmd_topic, alarm_id, type, device;
};

/// Whether an event opens something the platform's `ack` acknowledges.
bool acknowledgeable(const std::string& type) {
  return type == "fire_alarm" || type == "supervisory_alarm" || type == "device_fault" ||
         type == "device_offline";
}

/// "2h", "30m", "90" (minutes) as minutes; nullopt when it is none of them.
std::optional<int> minutes_of(const std::string& text) {
  std::size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const auto unit = text.substr(used);
  const int scale = unit.empty() || unit == "m" ? 1 : unit == "h" ? 60 : unit == "d" ? 1440 : 0;
  if (scale == 0 || n <= 0) return std::nullopt;
  return n * scale;
}

constexpr const char* console_help =
    "commands: ack N real|false|test | shield DEVICE 2h [REASON] | unshield DEVICE | list | help";

/// `number`: the alert's number on the console, when it has one.
void print_event(const nlohmann::json& j, bool color, std::optional<std::size_t> number = std::nullopt) {
  const auto type = str(j, "type");
  const auto cat = str(j, "category");
  const char* paint = !color           ? ""
                      : cat == "fire"  ? "\033[1;97;41m"
                      : cat == "fault" ? "\033[1;30;43m"
                                       : "\033[1;30;42m";
  const char* reset = color ? "\033[0m" : "";
  const auto& site = j.value("site", nlohmann::json::object());
  const auto& device = j.value("device", nlohmann::json::object());
  const auto& contacts = j.value("contacts", nlohmann::json::object());
  const auto responsible = contacts.value("responsible", nlohmann::json::object());
  const auto backup = contacts.value("backup", nlohmann::json::object());
  std::string label = type == "fire_alarm"              ? "FIRE ALARM"
                      : type == "fire_recovery"         ? "FIRE ALARM CLEARED"
                      : type == "device_offline"        ? "FAULT: DEVICE OFFLINE"
                      : type == "device_online"         ? "FAULT CLEARED: DEVICE ONLINE"
                      : type == "storage_fault"         ? "FAULT: GATEWAY STORAGE"
                      : type == "storage_recovery"      ? "FAULT CLEARED: GATEWAY STORAGE"
                      : type == "storage_eviction"      ? "GATEWAY STORAGE FULL: OLDEST DATA REMOVED"
                      : type == "supervisory_alarm"     ? "SUPERVISORY ALARM"
                      : type == "supervisory_recovery"  ? "SUPERVISORY ALARM CLEARED"
                      : type == "device_fault"          ? "FAULT: DEVICE"
                      : type == "device_fault_recovery" ? "FAULT CLEARED: DEVICE"
                      : type == "alarm_acknowledged"    ? "ACKNOWLEDGED"
                      : type == "alarm_escalation"      ? "FIRE ALARM NOT ACKNOWLEDGED"
                      : type == "device_shielded"       ? "DEVICE SHIELDED"
                      : type == "device_unshielded"     ? "DEVICE UNSHIELDED"
                      : type == "test_mode_started"     ? "TEST MODE STARTED"
                      : type == "test_mode_ended"       ? "TEST MODE ENDED"
                      : type == "linkage_done"          ? "LINKAGE DONE"
                      : type == "linkage_failed"        ? "LINKAGE FAILED"
                      : type == "linkage_overridden"    ? "LINKAGE OUTPUT SWITCHED BY HAND"
                      : type == "bus_offline"           ? "FAULT: BUS OFFLINE"
                      : type == "bus_online"            ? "FAULT CLEARED: BUS ONLINE"
                      : type == "config_rejected"       ? "GATEWAY CONFIGURATION REFUSED"
                      : type == "config_applied"        ? "GATEWAY CONFIGURATION APPLIED"
                      : type == "register_written"      ? "REGISTERS WRITTEN BY HAND"
                      : type == "clock_sync_refused"    ? "FAULT: CENTRE CLOCK SYNC REFUSED"
                      : type == "clock_unsynchronised"  ? "FAULT: GATEWAY CLOCK NOT SYNCHRONISED"
                      : type == "clock_synchronised"    ? "FAULT CLEARED: GATEWAY CLOCK SYNCHRONISED"
                                                        : type;
  if (j.value("test", false)) label = "TEST: " + label;
  if (number) label = fmt::format("#{} {}", *number, label);
  std::cout << fmt::format("\n{} {} {}  {}  [{}]\n", paint, label, reset, str(j, "time"), str(j, "severity"));
  std::cout << fmt::format("  place    {} ({}), site {}\n", str(site, "name"), str(site, "category"),
                           str(site, "id"));
  std::cout << fmt::format("  address  {}  ({:.5f}, {:.5f})\n", str(site, "address"),
                           site.value("latitude", 0.0), site.value("longitude", 0.0));
  if (j.contains("bus") && j["bus"].is_object()) {
    // A bus's fault: the line and everything behind it, not one device.
    const auto& bus = j["bus"];
    std::vector<std::string> names;
    for (const auto& n : bus.value("devices", nlohmann::json::array()))
      names.push_back(n.is_string() ? n.get<std::string>() : n.dump());
    std::cout << fmt::format("  bus      {} at {}{}\n", str(bus, "name"), str(bus, "address"),
                             bus.contains("failed") ? ": " + str(bus, "failed") : "");
    std::cout << fmt::format("  devices  {} behind it: {}\n", names.size(), fmt::join(names, ", "));
  } else {
    std::cout << fmt::format(
        "  where    {} -- {} {}\n", str(device, "location"), str(device, "name"),
        str(device, "description").empty() ? "" : "(" + str(device, "description") + ")");
  }
  std::cout << fmt::format("  call     {} {}   backup {} {}\n", str(responsible, "name"),
                           str(responsible, "phone"), str(backup, "name"), str(backup, "phone"));
  const bool linkage = str(j, "category") == "linkage" || type == "linkage_overridden";
  if (linkage) {
    // What was switched, to what, for which alarm: not a reading of a detector.
    const auto meaning = str(j, "value_label");
    std::cout << fmt::format("  switched {}.{} to {}{}\n", str(device, "name"), str(j, "point"),
                             j.contains("value") && j["value"].is_number()
                                 ? fmt::format("{:g}", j["value"].get<double>())
                                 : std::string("?"),
                             meaning.empty() ? "" : " (" + meaning + ")");
  } else if (j.contains("value")) {
    // An enumerated value as what it means ("state = fire"), with the number behind it.
    const auto meaning = str(j, "value_label");
    std::cout << fmt::format("  reading  {} = {}{}{}\n", str(j, "point"),
                             meaning.empty() ? j["value"].dump() : meaning + " (" + j["value"].dump() + ")",
                             str(j, "unit").empty() ? "" : " ", str(j, "unit"));
  }
  if (j.contains("evidence") && j["evidence"].is_array()) {
    // The readings behind the alarm, from the poll that decided it.
    std::vector<std::string> parts;
    for (const auto& x : j["evidence"]) {
      if (!x.is_object()) continue;
      const auto meaning = str(x, "label");
      parts.push_back(fmt::format("{} = {}{}{}", str(x, "name"),
                                  meaning.empty() ? (x.contains("value") && x["value"].is_number()
                                                         ? fmt::format("{:g}", x["value"].get<double>())
                                                         : std::string("?"))
                                                  : meaning,
                                  str(x, "unit").empty() ? "" : " ", str(x, "unit")));
    }
    std::cout << fmt::format("  evidence {}\n", fmt::join(parts, ", "));
  }
  std::cout << fmt::format("  detail   {}\n", str(j, "detail"));
  if (j.contains("state")) {
    std::cout << fmt::format("  state    {} since {}{}\n", str(j, "state"), str(j, "first_time"),
                             j.contains("actor") ? ", by " + str(j, "actor") : "");
  }
  // What the event's alarm_id means depends on the event: one ends it, one acknowledges it, a
  // linkage acts for it.
  const std::string relation = linkage                      ? " for alarm "
                               : cat == "recovery"          ? " ends alarm "
                               : cat == "acknowledgement"   ? " acknowledges alarm "
                               : type == "alarm_escalation" ? " repeats alarm "
                                                            : " names ";
  std::cout << fmt::format("  event    {} seq {} gateway {} {}{}\n", str(j, "id"), j.value("seq", 0),
                           str(j, "gateway"), str(j, "confirmation"),
                           j.contains("alarm_id") ? relation + str(j, "alarm_id") : "");
  std::cout << std::flush;
}

void print_status(const nlohmann::json& j, bool heartbeats) {
  const auto state = str(j, "state");
  const auto reason = str(j, "reason");
  if (state == "online" && reason == "heartbeat" && !heartbeats) return;
  const auto gateway = fmt::format("{} at {} ({})", str(j, "gateway"), str(j, "site_name"), str(j, "site"));
  if (state == "offline") {
    std::cout << fmt::format("\n GATEWAY OFFLINE  {}  {}: {}\n", str(j, "time"), gateway,
                             reason == "stopped" ? "stopped by its operator" : reason)
              << std::flush;
    return;
  }
  const auto devices = j.value("devices", nlohmann::json::object());
  const auto alarms = j.value("alarms", nlohmann::json::object());
  const auto outbox = j.value("outbox", nlohmann::json::object());
  std::cout << fmt::format(
                   "\n GATEWAY {}  {}  {}: version {}, up {} s, devices {} ({} offline), fire alarms {}, "
                   "unacknowledged {}, outbox {}/{}/{}, storage {}\n",
                   reason == "connected" ? "ONLINE" : "STATUS", str(j, "time"), gateway, str(j, "version"),
                   j.value("uptime_s", 0), devices.value("total", 0), devices.value("offline", 0),
                   alarms.value("fire", 0), alarms.value("unacknowledged", 0), outbox.value("alarm", 0),
                   outbox.value("event", 0), outbox.value("telemetry", 0),
                   j.value("storage", nlohmann::json::object()).value("state", ""))
            << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"firegate-center: reference platform receiver; prints alerts for a control-room operator"};
  std::string host = "127.0.0.1", prefix = "firegate";
  int port = 1883;
  bool telemetry = false;
  double auto_ack = -1;
  std::string verdict = "real";
  cli.add_option("--host", host, "broker host")->capture_default_str();
  cli.add_option("--port", port, "broker port")->capture_default_str();
  cli.add_option("--prefix", prefix, "topic prefix of the gateways")->capture_default_str();
  cli.add_flag("--telemetry", telemetry, "also print telemetry, one line a message");
  cli.add_option("--auto-ack", auto_ack, "acknowledge each alarm this many seconds after it arrives");
  cli.add_option("--verdict", verdict, "the verdict --auto-ack gives")
      ->check(CLI::IsMember({"real", "false", "test"}))
      ->capture_default_str();
  bool heartbeats = false;
  cli.add_flag("--heartbeats", heartbeats, "also print every gateway heartbeat (status messages)");
  std::string self_test;
  cli.add_option("--self-test", self_test,
                 "SITE/GATEWAY: ask that gateway for its end-to-end self-test, acknowledge it as a test, and "
                 "exit 0 when it has passed (1 after 30 s without)");
  std::string cafile, certfile, keyfile;
  cli.add_option("--cafile", cafile, "TLS: the CA of the broker's certificate (connects with ssl://)");
  cli.add_option("--cert", certfile, "TLS: this receiver's certificate, for a broker that asks for one");
  cli.add_option("--key", keyfile, "TLS: the key of --cert");
  CLI11_PARSE(cli, argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const bool color = ::isatty(STDOUT_FILENO) != 0;

  mqtt::async_client client(fmt::format("{}://{}:{}", cafile.empty() ? "tcp" : "ssl", host, port),
                            fmt::format("firegate-center-{}", ::getpid()), nullptr);
  struct pending_ack {
    std::chrono::steady_clock::time_point due;
    std::string topic, alarm_id, verdict;
  };
  // Paho's thread prints what arrives while this one prints what it sends: one at a time. The
  // callback holds output, then acks; this thread never holds either while it calls Paho.
  std::mutex output_mutex;
  bool closing{false};  ///< under output_mutex: main() is returning
  std::mutex acks_mutex;
  std::deque<pending_ack> acks;
  std::mutex alerts_mutex;  // taken under output_mutex, never the other way round
  std::vector<alert> alerts;
  std::map<std::string, std::string> device_gateway;  ///< device name → its gateway's cmd topic
  std::set<std::string> gateways;                     ///< every gateway's cmd topic seen
  std::set<std::string> seen_events;                  ///< every event's id, once
  std::string self_test_id;                           ///< the self-test command's id, once sent
  std::atomic<bool> self_test_done{false};
  client.set_message_callback([&](mqtt::const_message_ptr msg) {
    std::lock_guard output(output_mutex);
    if (closing) return;
    const auto& topic = msg->get_topic();
    if (topic.ends_with("/cmd")) return;  // our own commands
    auto j = nlohmann::json::parse(msg->get_payload_str(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      std::cout << fmt::format("(unreadable message on {}: not JSON)\n", topic) << std::flush;
      return;
    }
    const auto gateway_cmd = topic.substr(0, topic.rfind('/')) + "/cmd";
    if (topic.ends_with("/telemetry")) {
      {
        // Where each device is: its gateway, for shield and unshield from the console.
        std::lock_guard lock(alerts_mutex);
        gateways.insert(gateway_cmd);
        for (const auto& poll : j.value("polls", nlohmann::json::array()))
          if (const auto name = str(poll, "device"); !name.empty()) device_gateway[name] = gateway_cmd;
      }
      if (!telemetry) return;
      // firegate.telemetry/2: a batch of polls, one line each.
      for (const auto& poll : j.value("polls", nlohmann::json::array())) {
        std::string points;
        const auto all = poll.value("points", nlohmann::json::object());  // kept: items() refers to it
        for (auto& [k, v] : all.items()) {
          points += fmt::format(" {}={}{}", k, v.value("value", 0.0), str(v, "unit"));
        }
        std::cout << fmt::format("  telemetry {} {}{}\n", str(poll, "time"), str(poll, "device"), points);
      }
      std::cout << std::flush;
      return;
    }
    if (topic.ends_with("/cmd/reply")) {
      std::cout << fmt::format("  reply    to {} ({}): {}{}\n", str(j, "id"), str(j, "command"),
                               j.value("ok", false) ? "done" : "refused: ", str(j, "error"))
                << std::flush;
      return;
    }
    if (topic.ends_with("/status")) {
      {
        std::lock_guard lock(alerts_mutex);
        gateways.insert(gateway_cmd);
      }
      print_status(j, heartbeats);
      return;
    }
    const auto type = str(j, "type");
    const auto& cmd_topic = gateway_cmd;
    std::optional<std::size_t> number;
    {
      // Numbered for the console; a device's gateway remembered for shield and unshield.
      std::lock_guard lock(alerts_mutex);
      // QoS 1 may deliver an event twice (a resend after a reconnect): the platform drops it by id.
      if (const auto event_id = str(j, "id"); !event_id.empty() && !seen_events.insert(event_id).second) {
        std::cout << fmt::format("  (event {} delivered again: dropped by its id)\n", event_id) << std::flush;
        return;
      }
      gateways.insert(cmd_topic);
      const auto device_name = str(j.value("device", nlohmann::json::object()), "name");
      if (!device_name.empty()) device_gateway[device_name] = cmd_topic;
      if (acknowledgeable(type)) {
        alerts.push_back({cmd_topic, str(j, "id"), type, device_name});
        number = alerts.size();
      } else if (j.contains("alarm_id")) {
        // A later event of a numbered alert (its escalation, acknowledgement, end) shows its number.
        for (std::size_t i = 0; i < alerts.size(); ++i)
          if (alerts[i].alarm_id == str(j, "alarm_id")) number = i + 1;
      }
    }
    print_event(j, color, number);
    const bool is_self_test = str(j, "rule") == "self_test";
    if (is_self_test && type == "fire_recovery") {
      std::cout << "\n>> self-test passed: the gateway's test alarm reached this receiver and its "
                   "acknowledgement went back\n"
                << std::flush;
      self_test_done = true;
    }
    const bool ack_this =
        topic.ends_with("/alarm") && (type == "fire_alarm" || type == "supervisory_alarm") &&
        (is_self_test ? !self_test.empty() || auto_ack >= 0 : auto_ack >= 0 && !j.value("test", false));
    if (ack_this) {
      std::lock_guard lock(acks_mutex);
      acks.push_back({std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int>(std::max(auto_ack, 0.0) * 1000)),
                      topic.substr(0, topic.size() - 5) + "cmd", str(j, "id"),
                      is_self_test ? "test" : verdict});
    }
  });
  try {
    auto opts = mqtt::connect_options_builder().clean_session(true).automatic_reconnect(
        std::chrono::seconds(1), std::chrono::seconds(5));
    if (!cafile.empty()) {
      auto ssl = mqtt::ssl_options_builder().trust_store(cafile).enable_server_cert_auth(true).verify(true);
      if (!certfile.empty()) ssl.key_store(certfile).private_key(keyfile);
      opts.ssl(ssl.finalize());
    }
    client.connect(opts.finalize())->wait();
    client.subscribe(prefix + "/#", 1)->wait();
    if (!self_test.empty()) {
      self_test_id = fmt::format("center-{}-self-test", unique_suffix());
      const auto body = nlohmann::json{{"id", self_test_id},
                                       {"command", "self_test"},
                                       {"issued", issued_now()},
                                       {"args", {{"by", "firegate-center operator"}}}}
                            .dump();
      client.publish(fmt::format("{}/{}/cmd", prefix, self_test), body.data(), body.size(), 1, false)->wait();
      std::lock_guard output(output_mutex);
      std::cout << fmt::format(">> self-test asked of {}\n", self_test) << std::flush;
    }
  } catch (const mqtt::exception& e) {
    std::cerr << fmt::format("firegate-center: cannot subscribe at {}:{}: {}\n", host, port, e.what());
    return 1;
  }
  {
    std::lock_guard output(output_mutex);
    std::cout << fmt::format("firegate-center: watching {}/# on {}:{}\n", prefix, host, port) << std::flush;
  }
  std::atomic<int> commands{0};
  const auto send_command = [&](const std::string& topic, const std::string& name, nlohmann::json args) {
    args["by"] = "firegate-center operator";
    const auto body = nlohmann::json{
        {"id", fmt::format("center-{}-{}", unique_suffix(), ++commands)},
        {"command", name},
        {"issued", issued_now()},
        {"args",
         std::move(args)}}.dump();
    try {
      client.publish(topic, body.data(), body.size(), 1, false);
    } catch (const mqtt::exception& e) {
      std::lock_guard output(output_mutex);
      std::cerr << fmt::format("firegate-center: cannot send the {} command: {}\n", name, e.what());
    }
  };
  // The operator's console: one line a command, read without blocking the loop's stop.
  const auto console_line = [&](const std::string& line) {
    std::istringstream words(line);
    std::string verb;
    if (!(words >> verb)) return;
    const auto say = [&](const std::string& text) {
      std::lock_guard output(output_mutex);
      std::cout << text << '\n' << std::flush;
    };
    if (verb == "help") return say(console_help);
    // alerts_mutex is let go before say() takes output_mutex: the callback takes them the other way.
    if (verb == "list") {
      std::string text;
      {
        std::lock_guard lock(alerts_mutex);
        text = alerts.empty() ? "no alerts yet" : "";
        for (std::size_t i = 0; i < alerts.size(); ++i)
          text += fmt::format("{}#{} {} {} {}", i == 0 ? "" : "\n", i + 1, alerts[i].type, alerts[i].device,
                              alerts[i].alarm_id);
      }
      return say(text);
    }
    if (verb == "ack") {
      std::size_t n = 0;
      std::string v;
      if (!(words >> n >> v) || (v != "real" && v != "false" && v != "test"))
        return say("?? ack N real|false|test: the alert's number and what it was");
      std::optional<alert> a;
      {
        std::lock_guard lock(alerts_mutex);
        if (n >= 1 && n <= alerts.size()) a = alerts[n - 1];
      }
      if (!a) return say(fmt::format("?? no alert #{}: list shows them", n));
      say(fmt::format(">> acknowledging #{} (alarm {}) as {}", n, a->alarm_id, v));
      return send_command(a->cmd_topic, "ack", {{"alarm_id", a->alarm_id}, {"verdict", v}});
    }
    if (verb == "shield" || verb == "unshield") {
      std::string device, duration;
      words >> device;
      if (verb == "shield") words >> duration;
      std::string reason;
      std::getline(words >> std::ws, reason);
      const auto minutes = verb == "shield" ? minutes_of(duration) : std::optional<int>(0);
      if (device.empty() || !minutes || *minutes > 7 * 1440)
        return say(verb == "shield"
                       ? "?? shield DEVICE DURATION [REASON]: 90 (minutes), 30m, 2h, 1d; at most 7d"
                       : "?? unshield DEVICE");
      // The device's gateway: as SITE/GATEWAY/DEVICE, or the one its messages came from, or the only
      // gateway seen.
      std::string topic, known;
      if (const auto slash = device.rfind('/'); slash != std::string::npos) {
        topic = fmt::format("{}/{}/cmd", prefix, device.substr(0, slash));
        device = device.substr(slash + 1);
      } else {
        std::lock_guard lock(alerts_mutex);
        if (auto it = device_gateway.find(device); it != device_gateway.end()) {
          topic = it->second;
        } else if (gateways.size() == 1) {
          topic = *gateways.begin();
        }
        for (const auto& g : gateways) known += (known.empty() ? "" : ", ") + g;
      }
      if (topic.empty())
        return say(
            fmt::format("?? nothing from a device named {} yet, and its gateway is not known here: give "
                        "SITE/GATEWAY/{} (gateways seen: {})",
                        device, device, known.empty() ? "none" : known));
      if (verb == "unshield") {
        say(fmt::format(">> unshielding {}", device));
        return send_command(topic, "unshield", {{"device", device}});
      }
      if (reason.empty()) reason = "shielded from the control room";
      say(fmt::format(">> shielding {} for {} min: {}", device, *minutes, reason));
      return send_command(topic, "shield", {{"device", device}, {"minutes", *minutes}, {"reason", reason}});
    }
    say(fmt::format("?? {}: {}", verb, console_help));
  };
  std::thread console([&] {
    std::string pending;
    char buf[4096];
    while (!stop_requested) {
      pollfd in{STDIN_FILENO, POLLIN, 0};
      if (::poll(&in, 1, 100) <= 0) continue;
      const auto n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) return;  // no console (stdin closed or /dev/null): alerts are still shown
      pending.append(buf, static_cast<std::size_t>(n));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        console_line(pending.substr(0, nl));
        pending.erase(0, nl + 1);
      }
    }
  });
  int rc = 0;
  const auto started = std::chrono::steady_clock::now();
  while (!stop_requested) {
    if (!self_test.empty()) {
      if (self_test_done) break;
      if (std::chrono::steady_clock::now() - started > std::chrono::seconds(30)) {
        std::cerr << fmt::format(
            "firegate-center: the self-test of {} did not complete within 30 s: check that the gateway is "
            "online (its status topic), that it accepts self_test (its [uplink.mqtt] commands) and its log\n",
            self_test);
        rc = 1;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // Taken out under the lock, sent without it: Paho holds its own lock while it runs the message
    // callback, which takes ours, so publishing under ours could deadlock.
    std::vector<pending_ack> due;
    {
      std::lock_guard lock(acks_mutex);
      while (!acks.empty() && acks.front().due <= std::chrono::steady_clock::now()) {
        due.push_back(std::move(acks.front()));
        acks.pop_front();
      }
    }
    for (const auto& a : due) {
      {
        std::lock_guard output(output_mutex);
        std::cout << fmt::format("\n>> acknowledging alarm {} as {}\n", a.alarm_id, a.verdict) << std::flush;
      }
      send_command(a.topic, "ack", {{"alarm_id", a.alarm_id}, {"verdict", a.verdict}});
    }
  }
  stop_requested = true;  // the console's loop ends within its 100 ms poll
  console.join();
  // Nothing of Paho's reaches this function's state once it returns: the callback is told first
  // (under the lock it takes), then Paho is asked to stop calling it, which it may refuse while a
  // reconnect is under way.
  {
    std::lock_guard output(output_mutex);
    closing = true;
  }
  try {
    client.disable_callbacks();
  } catch (const mqtt::exception&) {
    // A connect in progress: the closing flag keeps the callback away from what goes.
  }
  try {
    client.disconnect()->wait_for(std::chrono::seconds(2));
  } catch (const mqtt::exception&) {
    // The broker went first: nothing left to close.
  }
  return rc;
}
