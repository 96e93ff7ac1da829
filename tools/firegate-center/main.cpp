// firegate-center: a reference receiver for the platform side. Subscribes to a broker and prints each
// alert as a control-room operator wants to read it: what, where, which place, who to call.
// The MQTT uplink issue grows it (acknowledgements, commands); the demo uses it as it is.

#include <fmt/format.h>
#include <mqtt/async_client.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

namespace {

std::atomic<bool> stop_requested{false};
void on_signal(int) {
  stop_requested = true;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void print_event(const nlohmann::json& j, bool color) {
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
                                                        : type;
  std::cout << fmt::format("\n{} {} {}  {}  [{}]\n", paint, label, reset, str(j, "time"), str(j, "severity"));
  std::cout << fmt::format("  place    {} ({}), site {}\n", str(site, "name"), str(site, "category"),
                           str(site, "id"));
  std::cout << fmt::format("  address  {}  ({:.5f}, {:.5f})\n", str(site, "address"),
                           site.value("latitude", 0.0), site.value("longitude", 0.0));
  std::cout << fmt::format("  where    {} -- {} {}\n", str(device, "location"), str(device, "name"),
                           str(device, "description").empty() ? "" : "(" + str(device, "description") + ")");
  std::cout << fmt::format("  call     {} {}   backup {} {}\n", str(responsible, "name"),
                           str(responsible, "phone"), str(backup, "name"), str(backup, "phone"));
  if (j.contains("value")) {
    std::cout << fmt::format("  reading  {} = {} {}\n", str(j, "point"), j["value"].dump(), str(j, "unit"));
  }
  std::cout << fmt::format("  detail   {}\n", str(j, "detail"));
  std::cout << fmt::format("  event    {} seq {} gateway {} {}{}\n", str(j, "id"), j.value("seq", 0),
                           str(j, "gateway"), str(j, "confirmation"),
                           j.contains("alarm_id") ? " ends alarm " + str(j, "alarm_id") : "");
  std::cout << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"firegate-center: reference platform receiver; prints alerts for a control-room operator"};
  std::string host = "127.0.0.1", prefix = "firegate";
  int port = 1883;
  bool telemetry = false;
  cli.add_option("--host", host, "broker host")->capture_default_str();
  cli.add_option("--port", port, "broker port")->capture_default_str();
  cli.add_option("--prefix", prefix, "topic prefix of the gateways")->capture_default_str();
  cli.add_flag("--telemetry", telemetry, "also print telemetry, one line a message");
  CLI11_PARSE(cli, argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const bool color = ::isatty(STDOUT_FILENO) != 0;

  mqtt::async_client client(fmt::format("tcp://{}:{}", host, port),
                            fmt::format("firegate-center-{}", ::getpid()), nullptr);
  client.set_message_callback([&](mqtt::const_message_ptr msg) {
    const auto& topic = msg->get_topic();
    auto j = nlohmann::json::parse(msg->get_payload_str(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      std::cout << fmt::format("(unreadable message on {}: not JSON)\n", topic) << std::flush;
      return;
    }
    if (topic.ends_with("/telemetry")) {
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
    print_event(j, color);
  });
  try {
    auto opts = mqtt::connect_options_builder().clean_session(true).automatic_reconnect(
        std::chrono::seconds(1), std::chrono::seconds(5));
    client.connect(opts.finalize())->wait();
    client.subscribe(prefix + "/#", 1)->wait();
  } catch (const mqtt::exception& e) {
    std::cerr << fmt::format("firegate-center: cannot subscribe at {}:{}: {}\n", host, port, e.what());
    return 1;
  }
  std::cout << fmt::format("firegate-center: watching {}/# on {}:{}\n", prefix, host, port) << std::flush;
  while (!stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  try {
    client.disconnect()->wait_for(std::chrono::seconds(2));
  } catch (const mqtt::exception&) {
    // The broker went first: nothing left to close.
  }
  return 0;
}
