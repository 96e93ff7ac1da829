#include "mqtt_driver.hpp"

#include "config/alarm_rules.hpp"
#include "config/report_config.hpp"
#include "config/suggest.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <array>
#include <map>
#include <memory>
#include <set>

namespace firegate::mqtt_ingest {
namespace asio = boost::asio;

namespace {

/// The MQTT profiles of this configuration load, read once whatever the number of buses.
std::shared_ptr<const profile_library> profiles_for(config::parse_context& context) {
  auto& slot = context.cache["mqtt.profiles"];
  if (!slot)
    slot = std::make_shared<const profile_library>(
        load_ingest_profiles(config::profile_folders(context, "mqtt"), context.errors));
  return std::static_pointer_cast<const profile_library>(slot);
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "gateway";
  return buf.data();
}

std::shared_ptr<const config::driver_settings> parse_bus(config::config_node& bus,
                                                         std::span<config::device_section> devices,
                                                         config::parse_context& context) {
  auto s = std::make_shared<ingest_bus_settings>();
  s->host = bus.get_string("host", config::presence::required,
                           "give the site broker's address (the bridges' or the IoT platform's)")
                .value_or("");
  if (auto t = bus.get_table("tls", config::presence::optional)) s->tls = config::parse_tls(*t, context.base);
  const std::int64_t default_port = s->tls ? 8883 : 1883;
  s->port =
      static_cast<std::uint16_t>(bus.get_integer("port", 1, 65535, default_port).value_or(default_port));
  s->client_id = bus.get_string_or("client_id", "");
  s->username = bus.get_string_or("username", "");
  s->password = bus.get_string_or("password", "");
  s->keepalive = std::chrono::seconds(bus.get_integer("keepalive_s", 5, 3600, 30).value_or(30));
  s->persistent_session = bus.get_bool("persistent_session", true);
  s->mqtt5 = bus.get_enum_or("mqtt_version", {"5", "3.1.1"}, "5").value_or("5") == "5";
  s->max_rate = bus.get_number("max_rate", 0.01, 10000, 5).value_or(5);
  s->burst = bus.get_number("burst", 1, 100000, 20).value_or(20);
  s->queue_limit =
      static_cast<std::size_t>(bus.get_integer("queue_limit", 100, 1000000, 20000).value_or(20000));
  s->library = profiles_for(context);
  const auto& library = *s->library;
  std::vector<std::string> names;
  for (const auto& [name, profile] : library) names.push_back(name);
  std::set<std::pair<std::string, std::string>> ids;
  std::vector<std::string> without_profiles;  // none could be loaded: one error for the bus
  std::map<const void*, std::shared_ptr<const std::vector<alarm_rule>>> shared_rules;  // by profile
  for (auto& d : devices) {
    ingest_device_settings m;
    m.name = d.common.name;
    m.id = d.node
               .get_string("id", config::presence::required,
                           "give the id its messages carry (the bridge's friendly name, the IMEI)")
               .value_or("");
    if (auto p = d.node.get_string("profile", config::presence::required,
                                   "name an MQTT profile, such as \"ZB-SMOKE\"")) {
      if (auto it = library.find(*p); it != library.end()) {
        m.profile = &it->second;
        // The profile's rules and the driver's own fault rules after them, so that a site may
        // override those too (enabled = false); one list for every device the site does not override.
        auto& shared = shared_rules[&it->second];
        if (!shared) {
          auto rules = it->second.rules;
          for (auto& r : builtin_rules()) rules.push_back(std::move(r));
          shared = std::make_shared<const std::vector<alarm_rule>>(std::move(rules));
        }
        m.rules = shared;
        m.profile_rules = shared;
        if (auto overrides = d.node.get_table("rules", config::presence::optional)) {
          auto rules = *shared;
          config::apply_rule_overrides(*overrides, rules);
          overrides->finish();
          m.rules = std::make_shared<const std::vector<alarm_rule>>(std::move(rules));
        }
        m.reports = config::device_reports(d.node, *m.profile->described);
        m.offline_after = it->second.offline_after;
        if (!m.id.empty() && !ids.emplace(*p, m.id).second) {
          d.node.error("id", fmt::format("\"{}\" is the id of another {} device on this bus; each sensor "
                                         "has its own",
                                         m.id, *p));
        }
      } else if (names.empty()) {
        without_profiles.push_back(d.common.name);
        for (const char* key : {"rules", "report"}) d.node.skip(key);  // the folder is the error
      } else {
        // Its rule and report overrides cannot be checked without the profile: one error, this one.
        for (const char* key : {"rules", "report"}) d.node.skip(key);
        d.node.error("profile",
                     fmt::format("\"{}\" is not a profile in {};{} known: {}", *p,
                                 config::profile_folders_text(config::profile_folders(context, "mqtt")),
                                 config::did_you_mean(*p, names), fmt::join(names, ", ")));
      }
    }
    const auto offline = d.node.get_integer("offline_after_s", 2, 7 * 86400, m.offline_after.count());
    if (offline) m.offline_after = std::chrono::seconds(*offline);
    if (!m.id.empty()) {
      const bool printable = m.id.size() <= 64 && std::none_of(m.id.begin(), m.id.end(), [](char ch) {
                               const auto c = static_cast<unsigned char>(ch);
                               return c <= 0x20 || c == 0x7F;
                             });
      if (!printable) d.node.error("id", "an id is 1-64 characters without spaces or control characters");
    }
    s->devices.push_back(std::move(m));
  }
  config::report_devices_without_profiles(
      bus, std::move(without_profiles),
      config::profile_folders_text(config::profile_folders(context, "mqtt")));
  if (s->client_id.empty())
    s->client_id = fmt::format("firegate-{}-{}", host_name(), bus.get_string_or("name", "ingest"));
  return s;
}

std::unique_ptr<bus_driver> create(asio::any_io_executor ex, const config::bus_config& bus,
                                   reading_sink& sink) {
  return make_ingest_bus(std::move(ex), bus.name,
                         std::dynamic_pointer_cast<const ingest_bus_settings>(bus.settings), sink);
}

}  // namespace

const ingest_device_settings* ingest_bus_settings::find(const std::string& device) const {
  for (const auto& d : devices) {
    if (d.name == device) return &d;
  }
  return nullptr;
}

std::vector<device_description> ingest_bus_settings::describe() const {
  std::vector<device_description> out;
  for (const auto& d : devices)
    out.push_back(firegate::describe(d.name, d.profile ? d.profile->described : nullptr, d.rules, d.reports,
                                     d.profile_rules));
  return out;
}

config::settings_list ingest_bus_settings::summary() const {
  // Secrets are shown as "(redacted)" (config show prints them as comments); the TLS table's keys
  // as tls.KEY, a table of its own.
  config::settings_list out{{"host", host},
                            {"port", std::int64_t{port}},
                            {"client_id", client_id},
                            {"username", username},
                            {"keepalive_s", std::int64_t{keepalive.count()}},
                            {"persistent_session", persistent_session},
                            {"mqtt_version", std::string(mqtt5 ? "5" : "3.1.1")},
                            {"max_rate", max_rate},
                            {"burst", burst},
                            {"queue_limit", static_cast<std::int64_t>(queue_limit)}};
  if (!password.empty()) out.push_back({"password", std::string("(redacted)")});
  if (tls) {
    for (const auto& [key, value] : {std::pair{"tls.ca_file", tls->ca_file},
                                     {"tls.ca_path", tls->ca_path},
                                     {"tls.cert_file", tls->cert_file},
                                     {"tls.key_file", tls->key_file}}) {
      if (!value.empty()) out.push_back({key, value});
    }
    if (!tls->key_password.empty()) out.push_back({"tls.key_password", std::string("(redacted)")});
    out.push_back({"tls.verify", tls->verify});
  }
  return out;
}

config::settings_list ingest_bus_settings::device_summary(const std::string& device) const {
  const auto* d = find(device);
  if (d == nullptr) return {};
  return {{"id", d->id},
          {"profile", d->profile ? d->profile->name : std::string()},
          {"offline_after_s", std::int64_t{d->offline_after.count()}},
          {"topic", d->profile ? d->profile->topic.filter() : std::string(), true}};
}

driver_entry mqtt_driver_entry() {
  return {"mqtt", parse_bus, create};
}

}  // namespace firegate::mqtt_ingest
