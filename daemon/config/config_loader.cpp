#include "config_loader.hpp"

#include "domain/sha256.hpp"
#include "tls_files.hpp"

#include "suggest.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace firegate::config {

const std::vector<std::string>& place_categories() {
  static const std::vector<std::string> categories{"factory",       "restaurant", "small_hotel",   "shop",
                                                   "internet_cafe", "workshop",   "entertainment", "clinic",
                                                   "school",        "warehouse",  "residential",   "other"};
  return categories;
}

namespace {

bool is_identifier(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

/// An id that appears in MQTT topics and logs: letters, digits, '-' and '_'.
std::string get_identifier(config_node& node, std::string_view key, std::string_view hint) {
  auto value = node.get_string(key, presence::required, hint);
  if (!value) return {};
  if (!is_identifier(*value)) {
    node.error(key, fmt::format("\"{}\" may use only letters, digits, '-' and '_' (1–64 characters); it is "
                                "used in MQTT topics",
                                *value));
    return {};
  }
  return *value;
}

contact parse_contact(config_node& node) {
  contact c;
  c.name = node.get_string("name", presence::required, "give the person's name").value_or("");
  c.phone = node.get_string("phone", presence::required, "give a phone number the control room can call")
                .value_or("");
  node.finish();
  return c;
}

gateway_config parse_gateway(config_node& node) {
  gateway_config g;
  g.id = get_identifier(node, "id", "give the gateway an id unique on the platform, such as \"gw-0001\"");
  g.description = node.get_string_or("description", "");
  node.finish();
  return g;
}

site_config parse_site(config_node& node) {
  site_config s;
  s.id = get_identifier(node, "id", "give the site id the platform knows this place by");
  s.name =
      node.get_string("name", presence::required, "give the place's name as the control room should read it")
          .value_or("");
  s.address = node.get_string("address", presence::required, "give the street address for the responders")
                  .value_or("");
  s.category = node.get_enum("category", presence::required, place_categories()).value_or("");
  s.latitude = node.get_number("latitude", -90, 90, std::nullopt).value_or(0);
  s.longitude = node.get_number("longitude", -180, 180, std::nullopt).value_or(0);
  if (auto r = node.get_table("responsible", presence::required)) s.responsible = parse_contact(*r);
  if (auto b = node.get_table("backup", presence::required)) s.backup = parse_contact(*b);
  node.finish();
  return s;
}

storage_config parse_storage(config_node& node) {
  storage_config s;
  s.path = node.get_string("path", presence::required,
                           "give the SQLite file, such as \"/var/lib/firegate/firegate.db\"")
               .value_or("");
  s.flush_interval =
      std::chrono::milliseconds(node.get_integer("flush_interval_ms", 100, 60000, 5000).value_or(5000));
  s.max_size_mb =
      static_cast<std::uint64_t>(node.get_integer("max_size_mb", 4, 1'000'000, 256).value_or(256));
  s.max_age = std::chrono::hours(24 * node.get_integer("max_age_days", 1, 3650, 30).value_or(30));
  node.finish();
  return s;
}

/// A file the daemon reads at connect time: resolved against the configuration's folder and checked
/// now, so that a wrong path is a configuration error and not a connection failing at 2 a.m.
std::string readable_file(config_node& node, std::string_view key, const std::filesystem::path& base) {
  auto value = node.get_string_or(std::string(key), "");
  if (value.empty()) return value;
  const auto path = (base / value).lexically_normal();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    node.error(key, fmt::format("{} does not exist; give the path of the PEM file", path.string()));
  } else if (std::filesystem::is_directory(path, ec) != (key == "ca_path")) {
    node.error(key, fmt::format("{} is {}", path.string(),
                                key == "ca_path" ? "not a folder; give a folder of CA certificates"
                                                 : "a folder; give the PEM file"));
  } else if (key != "ca_path" && !std::ifstream(path).good()) {
    node.error(key, fmt::format("{} cannot be read; let the firegate user read it", path.string()));
  }
  return path.string();
}

}  // namespace

mqtt_tls_config parse_tls(config_node& node, const std::filesystem::path& base) {
  mqtt_tls_config t;
  t.ca_file = readable_file(node, "ca_file", base);
  t.ca_path = readable_file(node, "ca_path", base);
  t.cert_file = readable_file(node, "cert_file", base);
  t.key_file = readable_file(node, "key_file", base);
  t.key_password = node.get_string_or("key_password", "");
  t.verify = node.get_bool("verify", true);
  if (t.cert_file.empty() != t.key_file.empty()) {
    node.error(t.cert_file.empty() ? "key_file" : "cert_file",
               "mutual TLS needs both cert_file and key_file; give the other one too, or neither");
  }
  // What OpenSSL will make of each file, checked now rather than at the first connection.
  const auto readable = [](const std::string& p) {
    std::error_code ec;
    return !p.empty() && std::filesystem::is_regular_file(p, ec) && std::ifstream(p).good();
  };
  const auto certificates_ok = [&](const char* key, const std::string& path) {
    if (!readable(path)) return false;
    auto problem = check_pem_certificates(path);
    if (!problem.empty()) node.error(key, fmt::format("{} {}", path, problem));
    return problem.empty();
  };
  certificates_ok("ca_file", t.ca_file);
  const bool cert_ok = certificates_ok("cert_file", t.cert_file);
  bool key_ok = false;
  if (readable(t.key_file)) {
    auto problem = check_pem_private_key(t.key_file, t.key_password);
    if (!problem.empty()) node.error("key_file", fmt::format("{} {}", t.key_file, problem));
    key_ok = problem.empty();
  }
  if (cert_ok && key_ok) {
    if (auto problem = check_key_pair(t.cert_file, t.key_file, t.key_password); !problem.empty())
      node.error("cert_file", problem);
  }
  node.finish();
  return t;
}

namespace {

mqtt_uplink_config parse_mqtt(config_node& node, const gateway_config& gateway,
                              const std::filesystem::path& base) {
  mqtt_uplink_config m;
  m.host = node.get_string("host", presence::required, "give the platform broker's host name or address")
               .value_or("");
  if (auto t = node.get_table("tls", presence::optional)) m.tls = parse_tls(*t, base);
  const std::int64_t default_port = m.tls ? 8883 : 1883;
  m.port =
      static_cast<std::uint16_t>(node.get_integer("port", 1, 65535, default_port).value_or(default_port));
  m.client_id = node.get_string_or("client_id", gateway.id);
  m.topic_prefix = node.get_string_or("topic_prefix", "firegate");
  if (m.topic_prefix.find_first_of("+#") != std::string::npos || m.topic_prefix.empty()) {
    node.error("topic_prefix", "must be non-empty and contain no MQTT wildcard ('+' or '#')");
  }
  m.keepalive = std::chrono::seconds(node.get_integer("keepalive_s", 5, 3600, 60).value_or(60));
  m.ack_timeout = std::chrono::seconds(node.get_integer("ack_timeout_s", 2, 600, 10).value_or(10));
  m.telemetry = node.get_bool("telemetry", true);
  m.max_in_flight = static_cast<std::size_t>(node.get_integer("max_in_flight", 1, 1000, 32).value_or(32));
  m.telemetry_rate = static_cast<double>(node.get_integer("telemetry_rate", 1, 100000, 50).value_or(50));
  m.telemetry_batch =
      static_cast<std::size_t>(node.get_integer("telemetry_batch", 1, 2000, 200).value_or(200));
  m.username = node.get_string_or("username", "");
  m.password = node.get_string_or("password", "");
  m.heartbeat = std::chrono::seconds(node.get_integer("heartbeat_s", 1, 3600, 900).value_or(900));
  m.command_max_age =
      std::chrono::seconds(node.get_integer("command_max_age_s", 10, 86400, 300).value_or(300));
  m.max_message_bytes =
      static_cast<std::size_t>(node.get_integer("max_message_bytes", 4096, 268435455, 65536).value_or(65536));
  if (auto key_file = node.get_string_or("command_key_file", ""); !key_file.empty()) {
    // The key commands are signed with: the file's text (such as 64 hex digits from openssl rand -hex
    // 32), one final newline not counted. Checked before it is read: a regular file, small, and
    // nobody's but the owner's and the group's.
    const auto path = (base / key_file).lexically_normal();
    m.command_key_file = path.string();
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    const auto others = std::filesystem::perms::others_all;
    if (ec || !std::filesystem::is_regular_file(st)) {
      node.error("command_key_file",
                 fmt::format("{} is not a readable regular file; check the path", path.string()));
    } else if ((st.permissions() & others) != std::filesystem::perms::none) {
      node.error("command_key_file",
                 fmt::format("{} is open to other users; chmod 0640 it (owner root, group firegate)",
                             path.string()));
    } else if (std::filesystem::file_size(path, ec) > 4096 || ec) {
      node.error("command_key_file", fmt::format("{} is over 4 KiB: not a key", path.string()));
    } else {
      std::ifstream in(path, std::ios::binary);
      std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (key.ends_with("\r\n")) {
        key.resize(key.size() - 2);
      } else if (key.ends_with('\n')) {
        key.pop_back();
      }
      if (!in.is_open() || in.bad()) {
        node.error("command_key_file",
                   fmt::format("{} cannot be read; check that firegate may read it", path.string()));
      } else if (key.size() < 64) {
        node.error("command_key_file",
                   fmt::format("{} holds {} characters; a key is at least 64 (openssl rand -hex 32 > {})",
                               path.string(), key.size(), path.string()));
      } else {
        m.command_key = std::move(key);
      }
    }
  }
  if (node.contains("commands")) {
    m.commands = node.get_string_array("commands");
    for (const auto& c : m.commands) {
      if (std::find(all_commands.begin(), all_commands.end(), c) == all_commands.end()) {
        node.error("commands", fmt::format("unknown command \"{}\";{} the commands are: {}", c,
                                           did_you_mean(c, all_commands), fmt::join(all_commands, ", ")));
      }
    }
    const auto has = [&](std::string_view c) {
      return std::find(m.commands.begin(), m.commands.end(), c) != m.commands.end();
    };
    if (has("config_apply") && !has("config_confirm")) {
      node.error("commands",
                 "config_apply is allowed but config_confirm is not: every change would be rolled back "
                 "after [remote] confirm_s; add \"config_confirm\" (docs/remote.md)");
    }
  }
  node.finish();
  return m;
}

gb26875_uplink_config parse_gb26875(config_node& node) {
  gb26875_uplink_config g;
  g.host = node.get_string("host", presence::required, "give the monitoring centre's host name or address")
               .value_or("");
  g.port = static_cast<std::uint16_t>(node.get_integer("port", 1, 65535, std::nullopt).value_or(0));
  constexpr std::int64_t max_address = (std::int64_t{1} << 48) - 1;
  g.uitd_address =
      static_cast<std::uint64_t>(node.get_integer("uitd_address", 0, max_address, std::nullopt).value_or(0));
  g.centre_address =
      static_cast<std::uint64_t>(node.get_integer("centre_address", 0, max_address, 0).value_or(0));
  g.system_type = static_cast<std::uint8_t>(node.get_integer("system_type", 0, 255, 1).value_or(1));
  g.system_address = static_cast<std::uint8_t>(node.get_integer("system_address", 0, 255, 1).value_or(1));
  g.confirm_timeout = std::chrono::seconds(node.get_integer("confirm_timeout_s", 1, 10, 10).value_or(10));
  g.retries = static_cast<unsigned>(node.get_integer("retries", 0, 10, 3).value_or(3));
  g.heartbeat = std::chrono::seconds(node.get_integer("heartbeat_s", 5, 600, 25).value_or(25));
  g.heartbeat_abnormal = std::chrono::seconds(node.get_integer("heartbeat_abnormal_s", 1, 60, 5).value_or(5));
  g.analog_interval = std::chrono::seconds(node.get_integer("analog_interval_s", 0, 86400, 60).value_or(60));
  g.clock_max_step = std::chrono::seconds(node.get_integer("clock_max_step_s", 0, 86400, 300).value_or(300));
  if (g.heartbeat_abnormal > g.heartbeat) {
    node.error("heartbeat_abnormal_s",
               "is longer than heartbeat_s; while the link is abnormal the heartbeat "
               "should come sooner, not later");
  }
  node.finish();
  return g;
}

control_config parse_control(config_node& node, const std::filesystem::path& base) {
  control_config c;
  c.enabled = node.get_bool("enabled", true);
  auto socket = node.get_string_or("socket", c.socket);
  if (socket.empty()) {
    node.error("socket", "give the control socket's path, such as \"/run/firegate/control.sock\"");
  } else {
    socket = (base / socket).lexically_normal().string();
    // sockaddr_un's sun_path holds 108 bytes with the terminating zero.
    if (socket.size() > 107) {
      node.error("socket",
                 fmt::format("{} is {} characters; a Unix socket path has at most 107: choose a shorter one",
                             socket, socket.size()));
    }
  }
  c.socket = socket;
  c.group = node.get_string_or("group", c.group);
  c.idle_timeout = std::chrono::seconds(node.get_integer("idle_timeout_s", 5, 3600, 120).value_or(120));
  node.finish();
  return c;
}

metrics_config parse_metrics(config_node& node) {
  metrics_config m;
  m.enabled = node.get_bool("enabled", false);
  const auto listen = node.get_string_or("listen", m.listen());
  // ADDRESS:PORT, an IPv6 address in brackets: "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464".
  const auto colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? std::string() : listen.substr(0, colon);
  // An IPv6 address only in brackets: "2001:db8::1:9464" would be read as port 9464 of 2001:db8::1.
  bool bad_host = host.find(':') != std::string::npos;
  bool bracketed = false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    bad_host = false;
    bracketed = true;
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  int port = 0;
  const auto port_text =
      colon == std::string::npos ? std::string_view() : std::string_view(listen).substr(colon + 1);
  const auto [end, bad] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (!ec && bracketed && !address.is_v6()) bad_host = true;  // "[127.0.0.1]:9464"
  if (ec || bad_host || host.empty() || bad != std::errc() || end != port_text.data() + port_text.size() ||
      port < 1 || port > 65535) {
    node.error("listen", fmt::format("\"{}\" is not ADDRESS:PORT; give an address of this box and a port, "
                                     "such as \"127.0.0.1:9464\" (loopback only), \"[::1]:9464\" or "
                                     "\"0.0.0.0:9464\" (every address: the metrics name the site's devices)",
                                     listen));
  } else {
    m.address = address.to_string();
    m.port = static_cast<std::uint16_t>(port);
  }
  node.finish();
  return m;
}

device_config parse_device_common(config_node& node) {
  device_config d;
  d.name = get_identifier(node, "name",
                          "give the device a name unique on this gateway, such as \"smoke-kitchen\"");
  d.bus =
      node.get_string("bus", presence::required, "name the [[buses]] entry this device is on").value_or("");
  d.location = node.get_string("location", presence::required,
                               "say where it is (building / floor / room), as responders need it")
                   .value_or("");
  d.description = node.get_string_or("description", "");
  if (node.contains("gb26875_address")) {
    if (auto a = node.get_integer("gb26875_address", 0, 0xFFFFFFFF, std::nullopt)) {
      d.gb26875_address = static_cast<std::uint32_t>(*a);
    }
  }
  return d;
}

linkage_config parse_linkage(config_node& node, const gateway_file& f) {
  linkage_config l;
  l.name = get_identifier(node, "name", "give the linkage a name for its events, such as \"kitchen-siren\"");
  const std::vector<std::string> categories(std::begin(alarm_category_names), std::end(alarm_category_names));
  const auto on = node.get_enum("on", presence::required, categories).value_or("fire");
  l.on =
      static_cast<alarm_category>(std::find(categories.begin(), categories.end(), on) - categories.begin());
  std::vector<std::string> names;
  for (const auto& d : f.devices) names.push_back(d.name);
  const auto known = [&](const std::string& key, const std::string& device) {
    if (std::find(names.begin(), names.end(), device) != names.end()) return true;
    node.error(key, fmt::format("\"{}\" is not a device of this site;{} fix the name", device,
                                did_you_mean(device, names)));
    return false;
  };
  l.devices = node.get_string_array("devices");
  for (const auto& d : l.devices) known("devices", d);
  l.rule = node.get_string_or("rule", "");
  l.device = node.get_string("device", presence::required, "name the device to write, such as a relay module")
                 .value_or("");
  l.write = node.get_string("write", presence::required, "name one of that device's profile [[writes]]")
                .value_or("");
  l.value = node.get_number("value", -1e9, 1e9, 1).value_or(1);
  if (node.contains("reset_value")) l.reset_value = node.get_number("reset_value", -1e9, 1e9, std::nullopt);
  if (!l.device.empty() && known("device", l.device) && !l.write.empty()) {
    const auto* described = f.catalogue.find(l.device);
    const auto writes = described ? described->writes() : std::vector<std::string>{};
    // A device whose profile could not be loaded has its own error: nothing more here.
    const bool profile_missing = described == nullptr || described->model_name().empty();
    if (!profile_missing && std::find(writes.begin(), writes.end(), l.write) == writes.end()) {
      node.error("write", writes.empty()
                              ? fmt::format("\"{}\" has nothing that can be written", l.device)
                              : fmt::format("\"{}\" has no write \"{}\";{} its writes are: {}", l.device,
                                            l.write, did_you_mean(l.write, writes), fmt::join(writes, ", ")));
    }
  }
  node.finish();
  return l;
}

/// Where a configuration's profiles are looked up, the site's folder first; the shipped one unless
/// it is off or the same folder. The parse and the revision both use it.
std::vector<std::filesystem::path> profile_dirs_of(const gateway_file& f) {
  std::vector<std::filesystem::path> dirs{f.profiles_dir};
  if (!f.shipped_profiles_dir.empty() && f.shipped_profiles_dir != f.profiles_dir)
    dirs.emplace_back(f.shipped_profiles_dir);
  return dirs;
}

gateway_file parse_file(const toml::table& root, const std::string& /*file*/, config_errors& errors,
                        const bus_parsers& parsers, const std::filesystem::path& base) {
  gateway_file f;
  config_node top(root, "", errors);
  std::filesystem::path profiles = "profiles";
  std::filesystem::path shipped = FIREGATE_SHIPPED_PROFILES;
  if (auto n = top.get_table("profiles", presence::optional)) {
    profiles = n->get_string_or("dir", "profiles");
    shipped = n->get_string_or("shipped", FIREGATE_SHIPPED_PROFILES);
    n->finish();
  }
  f.profiles_dir = (base / profiles).lexically_normal().string();
  if (!shipped.empty()) f.shipped_profiles_dir = (base / shipped).lexically_normal().string();
  parse_context context{profile_dirs_of(f), base, errors, {}, {}, {}};
  if (auto n = top.get_table("gateway", presence::required)) f.gateway = parse_gateway(*n);
  if (auto n = top.get_table("site", presence::required)) f.site = parse_site(*n);
  if (auto n = top.get_table("storage", presence::required)) f.storage = parse_storage(*n);
  if (auto n = top.get_table("alarms", presence::optional)) {
    f.alarms.escalate_after =
        std::chrono::seconds(n->get_integer("escalate_after_s", 0, 86400, 300).value_or(300));
    f.alarms.false_alarm_limit =
        static_cast<unsigned>(n->get_integer("false_alarms_per_day", 1, 1000, 5).value_or(5));
    f.alarms.shield_max = std::chrono::hours(n->get_integer("shield_max_hours", 1, 168, 24).value_or(24));
    f.alarms.clock_fault_after =
        std::chrono::seconds(n->get_integer("clock_fault_after_s", 0, 604800, 3600).value_or(3600));
    f.alarms.clock_check = std::chrono::seconds(n->get_integer("clock_check_s", 1, 3600, 60).value_or(60));
    const auto source = n->get_enum_or("clock_source", {"auto", "kernel", "timedated"}, "auto");
    f.alarms.clock = source == "kernel"      ? clock_source::kernel
                     : source == "timedated" ? clock_source::timedated
                                             : clock_source::automatic;
    n->finish();
  }
  if (auto uplink = top.get_table("uplink", presence::required)) {
    if (auto n = uplink->get_table("gb26875", presence::optional)) f.gb26875 = parse_gb26875(*n);
    // One uplink at least: MQTT, GB/T 26875.3 or both.
    if (auto n = uplink->get_table("mqtt", f.gb26875 ? presence::optional : presence::required)) {
      f.mqtt = parse_mqtt(*n, f.gateway, base);
      // Each flush makes at least one telemetry message: a slower pace never drains a backlog.
      const auto per_second = 1000.0 / static_cast<double>(f.storage.flush_interval.count());
      if (f.storage.flush_interval.count() > 0 && f.mqtt.telemetry && f.mqtt.telemetry_rate < per_second) {
        n->error("telemetry_rate",
                 fmt::format("{} a second is fewer than the {:.0f} telemetry messages a second "
                             "[storage] flush_interval_ms makes: a backlog would never drain; "
                             "raise it, or flush less often",
                             f.mqtt.telemetry_rate, per_second));
      }
    }
    uplink->finish();
  }

  if (auto n = top.get_table("control", presence::optional)) {
    f.control = parse_control(*n, base);
  }

  if (auto n = top.get_table("metrics", presence::optional)) f.metrics = parse_metrics(*n);
  if (auto n = top.get_table("remote", presence::optional)) {
    f.remote.confirm = std::chrono::seconds(n->get_integer("confirm_s", 10, 3600, 120).value_or(120));
    if (n->contains("dir")) f.remote.dir = (base / n->get_string_or("dir", "")).lexically_normal().string();
    n->finish();
  }
  if (f.remote.dir.empty()) {
    // Beside the database: the daemon's own folder, which it may write (the site file's may not be).
    f.remote.dir = (std::filesystem::path(f.storage.path).parent_path() / "config").string();
  }

  auto device_nodes = top.get_table_array("devices");
  for (auto& node : device_nodes) f.devices.push_back(parse_device_common(node));

  // Cross-field pass: unique names, every device on a declared bus, and with a GB/T 26875.3
  // centre, a unique component address each.
  std::set<std::string, std::less<>> device_names;
  std::map<std::uint32_t, std::string> gb_addresses;
  for (std::size_t i = 0; i < f.devices.size(); ++i) {
    const auto& d = f.devices[i];
    if (!d.name.empty() && !device_names.insert(d.name).second) {
      device_nodes[i].error("name",
                            fmt::format("\"{}\" is used by another device; names must be unique", d.name));
    }
    if (!f.gb26875) continue;
    if (!d.gb26875_address) {
      if (!device_nodes[i].contains("gb26875_address")) {
        device_nodes[i].error(
            "gb26875_address",
            "missing: with [uplink.gb26875] every device needs its component address on the "
            "monitoring centre, as the centre registered it (gb26875_address = 1)");
      }
    } else if (auto [it, fresh] = gb_addresses.emplace(*d.gb26875_address, d.name); !fresh) {
      device_nodes[i].error("gb26875_address", fmt::format("{} is also {}'s; each device needs its own",
                                                           *d.gb26875_address, it->second));
    }
  }

  auto bus_nodes = top.get_table_array("buses");
  // No buses is a new box (config/firegate-new-site.toml): it runs, reports to the platform and polls
  // nothing until the site is described; firegated says so at start and --check-config in its line.
  std::vector<std::string> driver_names;
  for (const auto& [name, parser] : parsers) driver_names.push_back(name);
  std::set<std::string, std::less<>> bus_names;
  std::vector<bool> handed_to_driver(f.devices.size(), false);
  for (auto& node : bus_nodes) {
    bus_config bus;
    bus.name = get_identifier(node, "name", "give the bus a name devices can refer to, such as \"rs485-1\"");
    if (!bus.name.empty() && !bus_names.insert(bus.name).second) {
      node.error("name", fmt::format("\"{}\" is used by another bus; names must be unique", bus.name));
    }
    bus.driver = node.get_enum("driver", presence::required, driver_names).value_or("");
    std::vector<device_section> devices;
    std::vector<std::size_t> indices;
    for (std::size_t i = 0; i < f.devices.size(); ++i) {
      if (!bus.name.empty() && f.devices[i].bus == bus.name) {
        devices.push_back({f.devices[i], device_nodes[i]});
        indices.push_back(i);
      }
    }
    if (auto p = parsers.find(bus.driver); p != parsers.end()) {
      context.bus = bus.name;
      bus.settings = p->second(node, devices, context);
      for (auto i : indices) handed_to_driver[i] = true;
    }
    node.finish();
    f.buses.push_back(std::move(bus));
  }
  for (std::size_t i = 0; i < f.devices.size(); ++i) {
    const auto& bus = f.devices[i].bus;
    if (!bus.empty() && !bus_names.contains(bus)) {
      const std::vector<std::string> declared(bus_names.begin(), bus_names.end());
      device_nodes[i].error("bus",
                            fmt::format("\"{}\" is not a declared bus;{} declare it under [[buses]] or fix "
                                        "the name",
                                        bus, did_you_mean(bus, declared)));
    }
    // A device whose bus or driver is unknown had its driver keys read by nobody: reporting them as
    // unknown too would bury the one real error.
    if (handed_to_driver[i]) device_nodes[i].finish();
  }
  std::vector<device_description> described;
  for (const auto& bus : f.buses) {
    if (!bus.settings) continue;
    for (auto& d : bus.settings->describe()) described.push_back(std::move(d));
  }
  f.catalogue = device_catalogue(std::move(described));
  for (auto& node : top.get_table_array("linkage")) f.linkages.push_back(parse_linkage(node, f));
  top.finish();
  return f;
}

}  // namespace

load_result load_config_text(std::string_view text, const std::string& file, const bus_parsers& parsers) {
  return load_config_text(text, file, parsers, std::filesystem::path(file).parent_path());
}

load_result load_config_candidate(std::string_view text, const std::string& label,
                                  const std::filesystem::path& site_path, const bus_parsers& parsers) {
  auto result = load_config_text(text, label, parsers, site_path.parent_path());
  if (result.config) result.config->revision = revision_of(text, profile_dirs_of(*result.config));
  return result;
}

load_result load_config_text(std::string_view text, const std::string& file, const bus_parsers& parsers,
                             const std::filesystem::path& base) {
  load_result result;
  result.file = file;
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    result.errors.add(
        e.source().begin.line, "(syntax)",
        fmt::format("{}; fix the TOML syntax at column {}", e.description(), e.source().begin.column));
    return result;
  }
  auto f = parse_file(root, file, result.errors, parsers, base);
  if (result.errors.empty()) result.config = std::move(f);
  return result;
}

load_result load_config_file(const std::filesystem::path& path, const bus_parsers& parsers) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    load_result result;
    result.file = path.string();
    result.errors.add(0, "(file)", "cannot be read; check that it exists and that firegate may read it");
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto result = load_config_text(text.str(), path.string(), parsers);
  if (result.config) result.config->revision = revision_of(text.str(), profile_dirs_of(*result.config));
  return result;
}

std::vector<std::filesystem::path> profile_folders(const parse_context& context, std::string_view driver) {
  std::vector<std::filesystem::path> out;
  for (const auto& dir : context.profile_dirs) out.push_back(dir / driver);
  return out;
}

std::string revision_of(std::string_view site_text, const std::vector<std::filesystem::path>& profile_dirs) {
  sha256 digest;
  const auto add = [&](std::string_view bytes) {
    // Each part with its length, so that moving bytes from one file to the next changes the hash.
    const auto n = std::to_string(bytes.size()) + ":";
    digest.update(n).update(bytes);
  };
  add(site_text);
  for (std::size_t i = 0; i < profile_dirs.size(); ++i) {
    for (const char* driver : {"modbus", "mqtt"}) {
      std::vector<std::filesystem::path> files;
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(profile_dirs[i] / driver, ec)) {
        if (entry.path().extension() == ".toml") files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::ostringstream bytes;
        bytes << in.rdbuf();
        // The site's folder keeps the names it always had, so a revision does not change on upgrade.
        add((i == 0 ? std::string() : fmt::format("{}:", i)) + driver + "/" + f.filename().string());
        add(bytes.str());
      }
    }
  }
  return digest.hex();
}

}  // namespace firegate::config
