#include "sim_mqtt.hpp"

#include "mqtt/mapping.hpp"
#include "sim_log.hpp"

#include <fmt/format.h>
#include <mqtt/async_client.h>
#include <poll.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <csignal>
#include <map>
#include <sstream>
#include <thread>

namespace firegate::sim {
namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;
namespace ingest = mqtt_ingest;

volatile std::sig_atomic_t stop_requested = 0;

struct sensor {
  const ingest::ingest_profile* profile{nullptr};
  std::string id;
  std::string topic;
  std::map<std::string, double> values;  ///< by point name
  std::uint64_t sequence{0};
  std::string last_payload;
  bool silent{false};
};

/// Where `value` goes in `doc` (a dotted path made of objects).
void put(json& doc, const std::vector<std::string>& path, json value) {
  json* at = &doc;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) at = &(*at)[path[i]];
  (*at)[path.back()] = std::move(value);
}

/// A plausible resting value: the "normal" code of a table, a full battery, a good signal.
double resting_value(const ingest::field_point& p) {
  if (p.type == ingest::field_type::boolean) return 0;
  if (!p.labels.empty()) return p.labels.contains(0) ? 0 : static_cast<double>(p.labels.begin()->first);
  if (p.unit == "%") return 95;
  if (p.unit == "dBm") return -85;
  if (p.unit == "mA") return 30;
  if (p.unit == "°C") return 25;
  return 100;
}

std::string topic_for(const ingest::topic_pattern& t, const std::string& id) {
  std::string out;
  for (std::size_t i = 0; i < t.levels.size(); ++i) {
    const auto& l = t.levels[i];
    std::string level = l;
    if (t.capture && *t.capture == i) {
      level = id;
    } else if (!l.empty() && (l[0] == '+' || l == "#")) {
      level = "sim";
    }
    out += (i == 0 ? "" : "/") + level;
  }
  return out;
}

std::string state_payload(sensor& s) {
  json doc = json::object();
  if (!s.profile->id_path.empty()) put(doc, s.profile->id_path, s.id);
  if (!s.profile->sequence_path.empty()) put(doc, s.profile->sequence_path, ++s.sequence);
  // The sensor's own clock, as its platform stamps a push: milliseconds since 1970.
  if (!s.profile->time_path.empty()) {
    put(doc, s.profile->time_path,
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
  }
  for (const auto& p : s.profile->points) {
    const auto raw = (s.values[p.name] - p.offset) / (p.scale == 0 ? 1 : p.scale);
    if (p.type == ingest::field_type::boolean) {
      put(doc, p.path, raw != 0);
    } else if (raw == static_cast<double>(static_cast<std::int64_t>(raw))) {
      put(doc, p.path, static_cast<std::int64_t>(raw));
    } else {
      put(doc, p.path, raw);
    }
  }
  return doc.dump();
}

class publisher {
 public:
  publisher(const std::string& broker, int qos) : qos_(qos) {
    client_ = std::make_unique<mqtt::async_client>("tcp://" + broker,
                                                   fmt::format("firegate-sim-{}", ::getpid()), nullptr);
    auto opts = mqtt::connect_options_builder().clean_session(true).max_inflight(1000).finalize();
    client_->connect(opts)->wait();
  }
  ~publisher() {
    try {
      client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
  /// Queues a message; waits only when Paho's own queue is full.
  void publish(const std::string& topic, const std::string& payload) {
    for (;;) {
      try {
        client_->publish(topic, payload.data(), payload.size(), qos_, false);
        return;
      } catch (const mqtt::exception& e) {
        if (e.get_return_code() != MQTTASYNC_MAX_BUFFERED_MESSAGES) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  /// Waits until everything queued has been acknowledged.
  void flush() {
    for (auto& t : client_->get_pending_delivery_tokens()) t->wait_for(std::chrono::seconds(5));
  }

 private:
  int qos_;
  std::unique_ptr<mqtt::async_client> client_;
};

std::optional<std::string> add_sensors(
    std::vector<sensor>& out, const std::string& spec,
    const std::map<std::string, ingest::ingest_profile, std::less<>>& profiles) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos)
    return fmt::format("--mqtt-device {}: give PROFILE:ID or PROFILE:PREFIX*N", spec);
  const auto name = spec.substr(0, colon);
  auto it = profiles.find(name);
  if (it == profiles.end()) {
    std::string known;
    for (const auto& [n, p] : profiles) known += (known.empty() ? "" : ", ") + n;
    return fmt::format("--mqtt-device {}: no MQTT profile {} (known: {})", spec, name, known);
  }
  std::vector<std::string> ids;
  const auto rest = spec.substr(colon + 1);
  if (auto star = rest.find('*'); star != std::string::npos) {
    long n = 0;
    const auto count = rest.substr(star + 1);
    if (std::from_chars(count.data(), count.data() + count.size(), n).ec != std::errc{} || n < 1 ||
        n > 100000)
      return fmt::format("--mqtt-device {}: N must be 1-100000", spec);
    for (long i = 1; i <= n; ++i) ids.push_back(fmt::format("{}{}", rest.substr(0, star), i));
  } else {
    ids.push_back(rest);
  }
  for (auto& id : ids) {
    sensor s;
    s.profile = &it->second;
    s.id = id;
    s.topic = topic_for(it->second.topic, id);
    for (const auto& p : it->second.points) s.values[p.name] = resting_value(p);
    out.push_back(std::move(s));
  }
  return std::nullopt;
}

/// One command line; false when it could not be carried out (logged).
void run_command(const std::string& line, std::vector<sensor>& sensors, publisher& pub) {
  std::istringstream in(line);
  std::string id, what, arg;
  in >> id >> what;
  std::getline(in >> std::ws, arg);
  auto it = std::find_if(sensors.begin(), sensors.end(), [&](const sensor& s) { return s.id == id; });
  if (it == sensors.end() || what.empty()) {
    log_line(fmt::format(
        "command rejected line=\"{}\" error=\"expected ID COMMAND, ID one of --mqtt-device's\"", line));
    return;
  }
  auto& s = *it;
  const auto send = [&](const std::string& payload, std::string_view kind) {
    pub.publish(s.topic, payload);
    log_line(fmt::format("published id={} topic={} kind={} bytes={} sequence={}", s.id, s.topic, kind,
                         payload.size(), s.sequence));
  };
  if (what == "publish") {
    send(s.last_payload = state_payload(s), "state");
  } else if (what == "repeat") {
    send(s.last_payload.empty() ? (s.last_payload = state_payload(s)) : s.last_payload, "repeat");
  } else if (what == "raw") {
    send(arg, "raw");
  } else if (what == "silent") {
    s.silent = arg == "1";
    log_line(fmt::format("sensor id={} silent={}", s.id, s.silent ? 1 : 0));
  } else if (what == "flood" || what == "huge") {
    long n = 0;
    if (std::from_chars(arg.data(), arg.data() + arg.size(), n).ec != std::errc{} || n < 1 || n > 10000000) {
      log_line(fmt::format("command rejected line=\"{}\" error=\"give a count\"", line));
      return;
    }
    if (what == "huge") {
      send(json{{"padding", std::string(static_cast<std::size_t>(n), 'x')}}.dump(), "huge");
      return;
    }
    for (long i = 0; i < n; ++i) pub.publish(s.topic, s.last_payload = state_payload(s));
    log_line(fmt::format("published id={} topic={} kind=flood count={} sequence={}", s.id, s.topic, n,
                         s.sequence));
  } else if (s.values.contains(what)) {
    double v = 0;
    if (std::from_chars(arg.data(), arg.data() + arg.size(), v).ec != std::errc{}) {
      log_line(fmt::format("command rejected line=\"{}\" error=\"VALUE must be a number\"", line));
      return;
    }
    s.values[what] = v;
    send(s.last_payload = state_payload(s), fmt::format("{}={}", what, arg));
  } else {
    log_line(fmt::format("command rejected line=\"{}\" error=\"{} is not a point of {}\"", line, what,
                         s.profile->name));
  }
}

}  // namespace

int run_mqtt(const mqtt_options& o) {
  config::config_errors errors;
  const auto profiles = ingest::load_ingest_profiles(std::filesystem::path(o.profiles_dir) / "mqtt", errors);
  if (!errors.empty()) {
    std::cerr << errors.format("firegate-sim MQTT profiles");
    return 1;
  }
  std::vector<sensor> sensors;
  for (const auto& spec : o.devices) {
    if (auto err = add_sensors(sensors, spec, profiles)) {
      std::cerr << "firegate-sim: " << *err << "\n";
      return 1;
    }
  }
  if (sensors.empty()) {
    std::cerr << "firegate-sim: --mqtt needs at least one --mqtt-device PROFILE:ID\n";
    return 2;
  }
  std::signal(SIGINT, [](int) { stop_requested = 1; });
  std::signal(SIGTERM, [](int) { stop_requested = 1; });
  try {
    publisher pub(o.broker, o.qos);
    log_line(fmt::format("publishing broker={} sensors={} interval_ms={} rate={}", o.broker, sensors.size(),
                         o.interval_ms, o.rate));
    const auto start = steady::now();
    auto next_round = start;
    std::uint64_t sent = 0, last_logged = 0;
    auto last_stats = start;
    std::string pending;
    bool stdin_open = o.commands;
    while (!stop_requested) {
      const auto now = steady::now();
      if (o.interval_ms > 0 && now >= next_round) {
        for (auto& s : sensors) {
          if (!s.silent) pub.publish(s.topic, s.last_payload = state_payload(s));
        }
        next_round = now + std::chrono::milliseconds(o.interval_ms);
      }
      if (o.rate > 0) {
        const auto elapsed = std::chrono::duration<double>(now - start).count();
        if (o.seconds > 0 && elapsed >= o.seconds) break;
        const auto due = static_cast<std::uint64_t>(elapsed * o.rate);
        for (; sent < due; ++sent) {
          auto& s = sensors[sent % sensors.size()];
          pub.publish(s.topic, s.last_payload = state_payload(s));
        }
        if (now - last_stats >= std::chrono::seconds(1)) {
          log_line(fmt::format("stats published={} per_s={}", sent, sent - last_logged));
          last_logged = sent;
          last_stats = now;
        }
      }
      pollfd fd{STDIN_FILENO, POLLIN, 0};
      const int wait_ms = o.rate > 0 ? 1 : 20;
      if (stdin_open && ::poll(&fd, 1, wait_ms) > 0) {
        char buf[4096];
        const auto n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) {
          stdin_open = false;
          continue;
        }
        pending.append(buf, static_cast<std::size_t>(n));
        for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
          auto line = pending.substr(0, nl);
          pending.erase(0, nl + 1);
          if (!line.empty() && line[0] != '#') run_command(line, sensors, pub);
        }
      } else if (!stdin_open) {
        std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      }
    }
    pub.flush();
    log_line(fmt::format("stopped published={}", sent));
  } catch (const mqtt::exception& e) {
    std::cerr << "firegate-sim: broker " << o.broker << ": " << e.what()
              << " (is it running? is the port right?)\n";
    return 1;
  }
  return 0;
}

}  // namespace firegate::sim
