// Proves the configuration validator accepts the shipped files and reports each class of error with
// its line, key path and a fix, all at once, so that a broken file never starts the gateway.

#include "config/config_loader.hpp"
#include "config/suggest.hpp"
#include "domain/sha256.hpp"
#include "driver.hpp"
#include "modbus/modbus_driver.hpp"
#include "support.hpp"
#include "uplink/gb26875/gb26875_mapping.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <tuple>

using namespace firegate;
using namespace firegate::config;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string example_path = test::source_dir() + "/config/firegate.toml";

/// The example file with `from` replaced by `to` (the text must occur).
std::string edited(const std::string& from, const std::string& to) {
  auto text = read_file(example_path);
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

/// Loads text as if it were the example file, so [profiles] dir resolves to config/profiles.
load_result load(const std::string& text) {
  return load_config_text(text, example_path, driver_parsers());
}

/// 1-based line of the first occurrence of `needle` in `text`.
std::uint32_t line_of(const std::string& text, const std::string& needle) {
  auto at = text.find(needle);
  REQUIRE(at != std::string::npos);
  return static_cast<std::uint32_t>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n') + 1);
}

}  // namespace

TEST_CASE("the shipped configurations are valid") {
  for (const auto* file : {"/config/firegate.toml", "/config/demo/firegate.toml"}) {
    auto r = load_config_file(test::source_dir() + file, driver_parsers());
    INFO(r.error_text());
    REQUIRE(r.config);
  }
  auto r = load_config_file(example_path, driver_parsers());
  const auto& cfg = *r.config;
  CHECK(cfg.gateway.id == "gw-0001");
  CHECK(cfg.site.category == "restaurant");
  CHECK(cfg.site.responsible.phone == "+86 138 0000 0001");
  CHECK(cfg.mqtt.client_id == "gw-0001");  // defaults to the gateway id
  REQUIRE(cfg.buses.size() == 3);          // Modbus TCP, Modbus RTU, MQTT
  CHECK(cfg.buses[2].driver == "mqtt");
  auto settings = std::dynamic_pointer_cast<const modbus::modbus_tcp_settings>(cfg.buses[0].settings);
  REQUIRE(settings);
  CHECK(settings->port == 502);
  REQUIRE(settings->devices.size() == 2);
  CHECK(settings->devices[1].unit_id == 2);
  CHECK(settings->devices[1].profile->name == "SD-1");
  CHECK(settings->wake_grid == std::chrono::milliseconds(10));  // Modbus TCP: wake-ups on the grid
  auto rtu = std::dynamic_pointer_cast<const modbus::modbus_rtu_settings>(cfg.buses[1].settings);
  REQUIRE(rtu);
  CHECK(rtu->wake_grid == std::chrono::milliseconds(0));  // a serial line paces itself
  CHECK(rtu->line.device == "/dev/ttyUSB0");
  CHECK(rtu->line.baud == 9600);
  CHECK(rtu->line.parity == 'N');
  CHECK(rtu->devices.at(0).profile->name == "EFD-4T");
}

TEST_CASE("out-of-range value names line - key path and range") {
  auto text = edited("unit_id = 2", "unit_id = 300");
  auto r = load(text);
  REQUIRE_FALSE(r.config);
  REQUIRE(r.errors.size() == 1);
  const auto expected = example_path + ":" + std::to_string(line_of(text, "unit_id = 300")) +
                        " devices[1].unit_id: 300 is outside 1–247\n";
  CHECK(r.error_text() == expected);
}

TEST_CASE("unknown keys are errors - so typos do not pass silently") {
  auto text = edited("timeout_ms = 1000", "timout_ms = 1000");
  auto r = load(text);
  REQUIRE(r.errors.size() == 1);
  const auto& e = r.errors.items()[0];
  CHECK(e.path == "buses[0].timout_ms");
  CHECK(e.line == line_of(text, "timout_ms"));
  CHECK(e.message.find("unknown key") != std::string::npos);
  CHECK(e.message.find("unknown key; did you mean \"timeout_ms\"? known keys here: alarm_interval_ms, "
                       "driver, framing, host") == 0);
}

TEST_CASE("missing required keys say what to put there") {
  auto r = load(edited("address = \"12 Jiefang Road, Xihu District, Hangzhou\"\n", ""));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors.items()[0].path == "site.address");
  CHECK(r.errors.items()[0].message.find("missing; give the street address") == 0);

  // The whole [storage] table, its header and keys, up to the next table.
  const auto example = read_file(example_path);
  const auto from = example.find("[storage]\n");
  const auto storage_table = example.substr(from, example.find("[uplink.mqtt]") - from);
  auto no_table = load(edited(storage_table, ""));
  REQUIRE(no_table.errors.size() == 1);
  CHECK(no_table.errors.items()[0].path == "storage");
}

TEST_CASE("wrong types are named") {
  auto r = load(edited("port = 502", "port = \"502\""));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors.items()[0].path == "buses[0].port");
  CHECK(r.errors.items()[0].message == "expected an integer, found a string");
}

TEST_CASE("enumerations list the allowed values") {
  auto r = load(edited("category = \"restaurant\"", "category = \"restraunt\""));
  REQUIRE(r.errors.size() == 1);
  CHECK(
      r.errors.items()[0].message.find("\"restraunt\" is not known; did you mean \"restaurant\"? use one of: "
                                       "factory, restaurant") == 0);

  auto profile = load(
      edited("profile = \"SD-1\"             # a Modbus profile", "profile = \"SD-l\"  # a Modbus profile"));
  REQUIRE(profile.errors.size() == 1);
  CHECK(profile.errors.items()[0].path == "devices[0].profile");
  CHECK(profile.errors.items()[0].message.find("\"SD-l\" is not a profile in") == 0);
  CHECK(profile.errors.items()[0].message.find(
            "did you mean \"SD-1\"? known: EFD-4T, GD-1, GD-1-FLOAT-LE, RL-2, SD-1") != std::string::npos);

  auto driver = load(edited("driver = \"modbus_tcp\"", "driver = \"modbus_tpc\""));
  REQUIRE_FALSE(driver.config);
  CHECK(driver.errors.items()[0].path == "buses[0].driver");
}

TEST_CASE("cross-field checks: unique names and declared buses") {
  auto dup = load(edited("name = \"smoke-dining\"", "name = \"smoke-kitchen\""));
  REQUIRE(dup.errors.size() == 2);  // and the linkage naming smoke-dining now names nothing
  CHECK(dup.errors.items()[0].path == "devices[1].name");
  CHECK(dup.errors.items()[0].message.find("used by another device") != std::string::npos);
  CHECK(dup.errors.items()[1].path == "linkage[0].devices");

  auto text = read_file(example_path);
  auto at = text.rfind("bus = \"tcp-1\"");
  auto r = load(text.replace(at, 13, "bus = \"tcp-2\""));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors.items()[0].path == "devices[1].bus");
  CHECK(r.errors.items()[0].message.find("\"tcp-2\" is not a declared bus; did you mean \"tcp-1\"?") == 0);
}

TEST_CASE("linkage: the example's are read - device - write and category checked with a suggestion") {
  auto ok = load(read_file(example_path));
  REQUIRE(ok.config);
  REQUIRE(ok.config->linkages.size() == 2);
  const auto& sounder = ok.config->linkages[0];
  CHECK(sounder.name == "kitchen-sounder");
  CHECK(sounder.on == firegate::alarm_category::fire);
  CHECK(sounder.devices == std::vector<std::string>{"smoke-kitchen", "smoke-dining"});
  CHECK(sounder.device == "relay-kitchen");
  CHECK(sounder.write == "siren");
  CHECK(sounder.reset_value == 0);
  CHECK_FALSE(ok.config->linkages[1].reset_value);
  CHECK(ok.config->linkages[1].rule == "leakage");

  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> bad{
      {"write = \"siren\"", "write = \"sirne\"", "linkage[0].write",
       "\"relay-kitchen\" has no write \"sirne\"; did you mean \"siren\"? its writes are: siren, power_cut"},
      {"device = \"relay-kitchen\"     # the", "device = \"relay-kitchn\"     # the", "linkage[0].device",
       "\"relay-kitchn\" is not a device of this site; did you mean \"relay-kitchen\"? fix the name"},
      {"devices = [\"efd-main-panel\"]", "devices = [\"efd-main-panl\"]", "linkage[1].devices",
       "\"efd-main-panl\" is not a device of this site; did you mean \"efd-main-panel\"? fix the name"},
      {"on = \"fire\"                  #", "on = \"smoke\"                  #", "linkage[0].on",
       "\"smoke\" is not known"},
  };
  for (const auto& [from, to, path, message] : bad) {
    auto r = load(edited(from, to));
    INFO(r.error_text());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.items()[0].path == path);
    CHECK(r.errors.items()[0].message.find(message) != std::string::npos);
  }
}

TEST_CASE("identifiers used in topics are checked") {
  auto r = load(edited("id = \"gw-0001\"", "id = \"gw 0001/x\""));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors.items()[0].path == "gateway.id");
  auto prefix = load(edited("topic_prefix = \"firegate\"", "topic_prefix = \"fire/#\""));
  REQUIRE(prefix.errors.size() == 1);
  CHECK(prefix.errors.items()[0].path == "uplink.mqtt.topic_prefix");
}

TEST_CASE("every error is reported at once - sorted by line") {
  auto text = edited("unit_id = 2", "unit_id = 0");
  text = text.replace(text.find("latitude = 30.2741"), 18, "latitude = 95");
  text = text.replace(text.find("keepalive_s = 30"), 16, "keepalive_s = 1");
  text += "\n[extra]\nx = 1\n";
  auto r = load(text);
  REQUIRE(r.errors.size() == 4);
  std::regex line_format(R"(^.*/config/firegate\.toml:\d+ [a-z_\[\]0-9.]+: .+$)");
  std::istringstream lines(r.error_text());
  std::string line;
  std::uint32_t last = 0;
  while (std::getline(lines, line)) {
    CHECK(std::regex_match(line, line_format));
    const auto n = static_cast<std::uint32_t>(std::stoul(line.substr(line.find(".toml:") + 6)));
    CHECK(n >= last);
    last = n;
  }
}

TEST_CASE("TOML syntax errors give the line and column") {
  auto r = load("[gateway]\nid = \"gw\"\n[site\nname = 1\n");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors.items()[0].line == 3);
  CHECK(r.errors.items()[0].path == "(syntax)");
  CHECK(r.errors.items()[0].message.find("column") != std::string::npos);
}

TEST_CASE("an unreadable file is one clear error") {
  auto r = load_config_file("/nonexistent/firegate.toml", driver_parsers());
  REQUIRE_FALSE(r.config);
  CHECK(r.error_text() ==
        "/nonexistent/firegate.toml (file): cannot be read; check that it exists and that "
        "firegate may read it\n");
}

TEST_CASE("serial line settings are checked") {
  auto baud = load(edited("baud = 9600 ", "baud = 14400"));
  REQUIRE(baud.errors.size() == 1);
  CHECK(baud.errors.items()[0].path == "buses[1].baud");
  CHECK(baud.errors.items()[0].message.find(
            "14400 is not a standard rate; use 9600 (most detectors), 19200") == 0);
  auto parity = load(edited("parity = \"none\"", "parity = \"mark\""));
  REQUIRE(parity.errors.size() == 1);
  CHECK(parity.errors.items()[0].path == "buses[1].parity");
  auto bits = load(edited("stop_bits = 1 ", "stop_bits = 3 "));
  REQUIRE(bits.errors.size() == 1);
  CHECK(bits.errors.items()[0].message == "3 is outside 1–2");
}

TEST_CASE("two buses on one serial line are refused - by name, through a link, or one serial server port") {
  const std::string second = "[[buses]]\nname = \"rs485-2\"\ndriver = \"modbus_rtu\"\ndevice = \"{}\"\n\n";
  const std::string wireless = "[[buses]]\nname = \"wireless\"";
  auto same = load(edited(wireless, fmt::format(fmt::runtime(second), "/dev/ttyUSB0") + wireless));
  REQUIRE(same.errors.size() == 1);
  CHECK(same.errors.items()[0].path == "buses[2].device");
  CHECK(same.errors.items()[0].message ==
        "/dev/ttyUSB0 is also the line of bus \"rs485-1\"; a line has one master: put the devices of both "
        "under one [[buses]] entry");

  // /dev/serial/by-id/usb-… is a link to /dev/ttyUSB0: the same adapter under another name.
  test::temp_dir dir;
  std::ofstream(dir / "ttyUSB7").put('\n');
  std::filesystem::create_symlink(dir / "ttyUSB7", dir / "usb-FTDI_FT232R-if00-port0");
  auto text = edited("device = \"/dev/ttyUSB0\"", "device = \"" + (dir / "ttyUSB7").string() + "\"");
  const auto at = text.find(wireless);
  REQUIRE(at != std::string::npos);
  text.insert(at, fmt::format(fmt::runtime(second), (dir / "usb-FTDI_FT232R-if00-port0").string()));
  auto linked = load(text);
  REQUIRE(linked.errors.size() == 1);
  CHECK(linked.errors.items()[0].message.find("usb-FTDI_FT232R-if00-port0 (" +
                                              std::filesystem::canonical(dir / "ttyUSB7").string() +
                                              ") is also the line of bus \"rs485-1\"") != std::string::npos);

  // A serial device server's port (framing = "rtu") is a line too.
  const std::string server =
      "[[buses]]\nname = \"{}\"\ndriver = \"modbus_tcp\"\nhost = \"192.0.2.20\"\nport = 4001\nframing = "
      "\"rtu\"\n\n";
  auto servers = load(edited(wireless, fmt::format(fmt::runtime(server), "npy-1") +
                                           fmt::format(fmt::runtime(server), "npy-2") + wireless));
  REQUIRE(servers.errors.size() == 1);
  CHECK(servers.errors.items()[0].path == "buses[3].framing");
  CHECK(servers.errors.items()[0].message.find(
            "192.0.2.20:4001 is also the serial server line of bus \"npy-1\"") == 0);

  // Two different lines are two buses.
  auto other = load(edited(wireless, fmt::format(fmt::runtime(second), "/dev/ttyUSB1") + wireless));
  INFO(other.error_text());
  CHECK(other.errors.empty());
}

TEST_CASE("suggestions: close typos only") {
  using firegate::config::closest;
  using firegate::config::edit_distance;
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("same", "same") == 0);
  CHECK(edit_distance("prot", "port") == 1);  // a transposition is one slip
  CHECK(edit_distance("restraunt", "restaurant") == 3);
  const std::vector<std::string> keys{"host", "port", "timeout_ms", "poll_interval_ms"};
  CHECK(closest("timout_ms", keys) == "timeout_ms");
  CHECK(closest("poll_intervall_ms", keys) == "poll_interval_ms");
  CHECK(closest("prot", keys) == "port");
  CHECK_FALSE(closest("xy", keys));        // too short to guess
  CHECK_FALSE(closest("baudrate", keys));  // nothing close
  auto r = load(edited("poll_interval_ms = 1000", "pol_interval_ms = 1000"));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors.items()[0].message.find("did you mean \"poll_interval_ms\"?") != std::string::npos);
}

TEST_CASE("Modbus TCP options that need each other are checked together") {
  auto pipelined_rtu = load(edited("port = 502\n", "port = 502\nframing = \"rtu\"\nmax_in_flight = 4\n"));
  REQUIRE(pipelined_rtu.errors.size() == 1);
  CHECK(pipelined_rtu.errors.items()[0].path == "buses[0].max_in_flight");
  CHECK(pipelined_rtu.errors.items()[0].message.find("no transaction id") != std::string::npos);

  auto turnaround_on_tcp = load(edited("port = 502\n", "port = 502\nbroadcast_turnaround_ms = 100\n"));
  REQUIRE(turnaround_on_tcp.errors.size() == 1);
  CHECK(turnaround_on_tcp.errors.items()[0].path == "buses[0].broadcast_turnaround_ms");

  auto pipelined = load(edited("port = 502\n", "port = 502\nmax_in_flight = 4\n"));
  CHECK(pipelined.errors.empty());

  // A serial device server passes a line's frames through: no wake-up grid, as on a serial port.
  auto server = load(edited("port = 502\n", "port = 502\nframing = \"rtu\"\n"));
  REQUIRE(server.config);
  auto s = std::dynamic_pointer_cast<const modbus::modbus_tcp_settings>(server.config->buses[0].settings);
  REQUIRE(s);
  CHECK(s->wake_grid == std::chrono::milliseconds(0));
}

TEST_CASE(
    "uplink TLS: files are checked when the file is read - relative to it - the port defaults to 8883") {
  const std::string from = "port = 1883\n";
  const std::string tls_from = "# [uplink.mqtt.tls]\n";
  {
    auto text =
        edited(tls_from, "[uplink.mqtt.tls]\nca_file = \"missing-ca.pem\"\ncert_file = \"profiles\"\n");
    auto r = load(text);
    REQUIRE_FALSE(r.config);
    const auto errors = r.error_text();
    INFO(errors);
    const auto dir = std::filesystem::path(example_path).parent_path();
    CHECK(errors.find("uplink.mqtt.tls.ca_file: " + (dir / "missing-ca.pem").string() +
                      " does not exist; give the path of the PEM file") != std::string::npos);
    CHECK(errors.find("uplink.mqtt.tls.cert_file: " + (dir / "profiles").string() +
                      " is a folder; give the PEM file") != std::string::npos);
    CHECK(errors.find("uplink.mqtt.tls.cert_file: mutual TLS needs both cert_file and key_file") !=
          std::string::npos);
    CHECK(r.errors.size() == 3);
  }
  // A real PEM certificate (tests/data/test-ca.pem, self-signed for these tests), named relative to
  // the configuration's folder.
  auto text = edited(tls_from,
                     "[uplink.mqtt.tls]\nca_file = \"../tests/data/test-ca.pem\"\nca_path = \"profiles\"\n");
  text.replace(text.find(from), from.size(), "");
  auto r = load(text);
  INFO(r.error_text());
  REQUIRE(r.config);
  REQUIRE(r.config->mqtt.tls);
  CHECK(r.config->mqtt.tls->ca_file ==
        (std::filesystem::path(example_path).parent_path() / "../tests/data/test-ca.pem")
            .lexically_normal()
            .string());
  CHECK(r.config->mqtt.tls->verify);
  CHECK(r.config->mqtt.port == 8883);
  CHECK(load(read_file(example_path)).config->mqtt.port == 1883);
}

TEST_CASE("uplink commands: the allow-list knows the commands - a typo gets a suggestion") {
  auto r = load(edited(R"(# commands = ["ack", "shield")", R"(commands = ["ak", "shield")"));
  REQUIRE_FALSE(r.config);
  CHECK(r.error_text().find(
            R"(uplink.mqtt.commands: unknown command "ak"; did you mean "ack"? the commands are: )") !=
        std::string::npos);
  auto ok =
      load(edited(R"(# commands = ["ack", "shield", "unshield", "test_mode", "status", "read", "self_test"])",
                  R"(commands = ["status"])"));
  REQUIRE(ok.config);
  CHECK(ok.config->mqtt.commands == std::vector<std::string>{"status"});
  // Left out, nothing that can silence a detector is accepted from the platform.
  auto defaults = load(edited(
      R"(# commands = ["ack", "shield", "unshield", "test_mode", "status", "read", "self_test"])", ""));
  REQUIRE(defaults.config);
  CHECK(defaults.config->mqtt.commands ==
        std::vector<std::string>{"ack", "unshield", "status", "read", "self_test"});
}

TEST_CASE("a telemetry pace slower than the flushes make messages is refused - a backlog would never drain") {
  auto r = load(
      edited("telemetry_rate = 50 ", "telemetry_rate = 1 ")
          .replace(read_file(example_path).find("flush_interval_ms = 5000"), 24, "flush_interval_ms = 200 "));
  REQUIRE_FALSE(r.config);
  CHECK(r.error_text().find(
            "uplink.mqtt.telemetry_rate: 1 a second is fewer than the 5 telemetry messages a second "
            "[storage] flush_interval_ms makes") != std::string::npos);
}

TEST_CASE("uplink: heartbeat and telemetry batch are read - the defaults hold when absent") {
  auto r = load(edited("telemetry_batch = 200 ", "telemetry_batch = 5 "));
  REQUIRE(r.config);
  CHECK(r.config->mqtt.telemetry_batch == 5);
  auto faster = load(edited("heartbeat_s = 900 ", "heartbeat_s = 120 "));
  REQUIRE(faster.config);
  CHECK(faster.config->mqtt.heartbeat == std::chrono::seconds(120));
  // Absent: 15 minutes (a status message is about 1.5 KB on a paid link; the last will says a box is gone).
  auto absent = load(edited("heartbeat_s = 900 ", "# heartbeat_s = 900 "));
  REQUIRE(absent.config);
  CHECK(absent.config->mqtt.heartbeat == std::chrono::seconds(900));
  auto bad = load(edited("heartbeat_s = 900 ", "heartbeat_s = 0 "));
  REQUIRE_FALSE(bad.config);
  CHECK(bad.error_text().find("uplink.mqtt.heartbeat_s: 0 is outside 1–3600") != std::string::npos);
}

TEST_CASE("an mqtt bus's devices and settings come from its table and its profiles") {
  auto r = load(read_file(example_path));
  REQUIRE(r.config);
  const auto& buses = r.config->buses;
  const auto bus = std::find_if(buses.begin(), buses.end(), [](auto& b) { return b.driver == "mqtt"; });
  REQUIRE(bus != buses.end());
  const auto* room = r.config->catalogue.find("smoke-room-201");
  REQUIRE(room != nullptr);
  CHECK(room->model_name() == "ZB-SMOKE");
  CHECK(room->writes().empty());
  const auto summary = bus->settings->device_summary("smoke-storeroom");
  const auto has = [&](const std::string& key, const auto& value, bool derived) {
    return std::any_of(summary.begin(), summary.end(), [&](const config::setting& s) {
      return s.key == key && s.derived == derived && s.value == decltype(s.value)(value);
    });
  };
  CHECK(has("offline_after_s", std::int64_t{90000}, false));
  CHECK(has("topic", std::string("nbiot/+/push"), true));  // from the profile: shown, not a key
  // The password is a secret: not in the summary firegatectl shows.
  for (const auto& s : bus->settings->summary())
    CHECK(s.value != decltype(s.value)(std::string("change-me")));
  // Every device has its profile's rules and the driver's two fault rules.
  std::vector<std::string> names;
  for (const auto& rule : *room->rules) names.push_back(rule.name);
  CHECK(names ==
        std::vector<std::string>{"fire", "battery_low", "tamper", "ingest_flood", "ingest_unreadable"});
  CHECK(r.config->catalogue.label("smoke-storeroom", "alarm_status", 1) == "smoke");
  // The driver's own rules can be overridden like the profile's.
  auto quiet = load(edited("description = \"Wireless photoelectric smoke detector (Zigbee)\"",
                           "description = \"Wireless photoelectric smoke detector (Zigbee)\"\n"
                           "[devices.rules.ingest_flood]\nenabled = false"));
  INFO(quiet.error_text());
  REQUIRE(quiet.config);
  const auto* quiet_room = quiet.config->catalogue.find("smoke-room-201");
  REQUIRE(quiet_room != nullptr);
  REQUIRE(quiet_room->rules->size() == 5);
  for (const auto& rule : *quiet_room->rules) CHECK(rule.enabled == (rule.name != "ingest_flood"));
}

TEST_CASE("mqtt bus errors name the key and the fix") {
  auto err = [](const std::string& from, const std::string& to) {
    auto r = load(edited(from, to));
    CHECK_FALSE(r.config);
    return r.error_text();
  };
  CHECK(err("profile = \"ZB-SMOKE\"", "profile = \"ZB-SMOK\"").find("did you mean \"ZB-SMOKE\"") !=
        std::string::npos);
  CHECK(err("id = \"868120301234567\"", "id = \"room-201\"\nprofile_ = 1").find("unknown key") !=
        std::string::npos);
  CHECK(err("id = \"room-201\" ", "id = \"room 201\" ").find("without spaces") != std::string::npos);
  CHECK(err("max_rate = 5 ", "max_rate = 0 ").find("max_rate") != std::string::npos);
  CHECK(err("offline_after_s = 90000", "offline_after_s = 1").find("offline_after_s") != std::string::npos);
  // Two devices of one profile with the same id.
  auto text =
      edited("profile = \"NB-SMOKE\"\nid = \"868120301234567\"", "profile = \"ZB-SMOKE\"\nid = \"room-201\"");
  auto r = load(text);
  CHECK_FALSE(r.config);
  CHECK(r.error_text().find("\"room-201\" is the id of another ZB-SMOKE device on this bus") !=
        std::string::npos);
  // A [buses.tls] whose CA file is not there.
  CHECK(err("keepalive_s = 30\n", "keepalive_s = 30\n[buses.tls]\nca_file = \"nowhere.pem\"\n")
            .find("nowhere.pem does not exist") != std::string::npos);
}

namespace {

/// The example file with a GB/T 26875.3 uplink (`keys` added to it), every device given a
/// component address from 1 up, and, with `mqtt` false, its [uplink.mqtt] table left out.
std::string with_gb26875(const std::string& keys = "", bool mqtt = true) {
  auto text = read_file(example_path);
  const std::string table =
      "[uplink.gb26875]\nhost = \"centre.example.org\"\nport = 9026\nuitd_address = 889\n" + keys;
  const auto mqtt_at = text.find("[uplink.mqtt]");
  if (mqtt) {
    text.insert(mqtt_at, table + "\n");
  } else {
    const auto end = text.find("[control]");
    text.replace(mqtt_at, end - mqtt_at, table + "\n");
  }
  int n = 0;
  for (std::size_t at = 0; (at = text.find("[[devices]]\n", at)) != std::string::npos; at += 12) {
    text.insert(at + 12, fmt::format("gb26875_address = {}\n", ++n));
  }
  return text;
}

}  // namespace

TEST_CASE("gb26875 uplink: its table and the devices' addresses are read - with or without the mqtt uplink") {
  auto r = load(with_gb26875("retries = 2\nconfirm_timeout_s = 5\n"));
  INFO(r.error_text());
  REQUIRE(r.config);
  REQUIRE(r.config->gb26875);
  const auto& g = *r.config->gb26875;
  CHECK(g.host == "centre.example.org");
  CHECK(g.port == 9026);
  CHECK(g.uitd_address == 889);
  CHECK(g.centre_address == 0);
  CHECK(g.retries == 2);
  CHECK(g.confirm_timeout == std::chrono::seconds(5));
  CHECK(g.heartbeat == std::chrono::seconds(25));
  CHECK(g.heartbeat_abnormal == std::chrono::seconds(5));
  CHECK(g.analog_interval == std::chrono::seconds(60));
  CHECK(r.config->devices.front().gb26875_address == 1u);
  CHECK_FALSE(r.config->mqtt.host.empty());
  // Without [uplink.mqtt]: GB/T 26875.3 alone.
  auto alone = load(with_gb26875("", false));
  INFO(alone.error_text());
  REQUIRE(alone.config);
  CHECK(alone.config->mqtt.host.empty());
  // Neither uplink: [uplink.mqtt] is required.
  auto none = load(edited("[uplink.mqtt]", "[uplink.mqtt_off]"));
  CHECK(none.error_text().find("uplink.mqtt: missing") != std::string::npos);
}

TEST_CASE("gb26875 uplink errors name the key and the fix") {
  const auto err = [](const std::string& text) { return load(text).error_text(); };
  CHECK(err(with_gb26875("confirm_timeout_s = 11\n"))
            .find("uplink.gb26875.confirm_timeout_s: 11 is outside 1–10") != std::string::npos);
  CHECK(err(with_gb26875("heartbeat_s = 10\nheartbeat_abnormal_s = 20\n"))
            .find("heartbeat_abnormal_s: is longer than heartbeat_s") != std::string::npos);
  CHECK(err(with_gb26875("uitd_address = 281474976710656\n")).find("uitd_address") != std::string::npos);
  // A device without its address, and two devices with one.
  auto text = with_gb26875();
  const auto first = text.find("gb26875_address = 1\n");
  auto missing = text;
  missing.erase(first, 20);
  CHECK(err(missing).find("gb26875_address: missing: with [uplink.gb26875] every device needs its component "
                          "address") != std::string::npos);
  auto twice = text;
  twice.replace(text.find("gb26875_address = 2\n"), 20, "gb26875_address = 1\n");
  CHECK(err(twice).find("gb26875_address: 1 is also smoke-kitchen's; each device needs its own") !=
        std::string::npos);
}

TEST_CASE("profiles: [gb26875] gives component types per device type and per point") {
  auto r = load(with_gb26875());
  REQUIRE(r.config);
  // The catalogue carries them as the profile's annotations for the uplink named; the GB uplink
  // reads them.
  const auto* efd = r.config->catalogue.find("efd-main-panel");
  REQUIRE(efd != nullptr);
  CHECK(efd->model_name() == "EFD-4T");
  const auto& types = efd->annotations_for("gb26875");
  CHECK(gb_component_type(types, "residual_current") == std::uint8_t{17});
  CHECK(gb_component_type(types, "cable_temperature_2") == std::uint8_t{18});
  CHECK(gb_component_type(types, "") == std::uint8_t{17});
  // A setting is kept from the centre.
  CHECK_FALSE(gb_component_type(types, "leakage_alarm_setting").has_value());
  const auto* smoke = r.config->catalogue.find("smoke-kitchen");
  REQUIRE(smoke != nullptr);
  CHECK(gb_component_type(smoke->annotations_for("gb26875"), "state") == std::uint8_t{42});
}

TEST_CASE("a configuration's revision is the SHA-256 of its parts, each after its length") {
  // The oracle is Python's hashlib: sha256(b"3:abc"), and with a profile folder holding one file
  // sha256(b"3:abc" + b"13:modbus/x.toml" + b"5:a = 1").
  CHECK(config::revision_of("abc", {}) == "aab5f9ae99b2e38fb462025c8f72f570c9c811705d2a4277dc855d7fa293fe97");
  test::temp_dir dir;
  std::filesystem::create_directories(dir / "modbus");
  std::ofstream(dir / "modbus" / "x.toml") << "a = 1";
  CHECK(config::revision_of("abc", {dir.path()}) ==
        "41b49ad2ef6cd0c181953f3a11e62dce2df780f6fc2bf1b11c441ba20eb0fef4");
}

TEST_CASE("sha256: the standard's test vectors - in one part or several") {
  // FIPS 180-2, appendix B.1 and B.2.
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  sha256 parts;
  parts.update("abcdbcdecdefdefgefghfghighijhijkijkljklm").update("klmnlmnomnopnopq");
  CHECK(parts.hex() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("[metrics] listen: an address and a port, IPv6 in brackets - anything else named with examples") {
  const auto with = [](const std::string& listen) {
    return load(read_file(example_path) + "\n[metrics]\nenabled = true\nlisten = \"" + listen + "\"\n");
  };
  auto v4 = with("0.0.0.0:9100");
  REQUIRE(v4.config);
  CHECK(v4.config->metrics.enabled);
  CHECK(v4.config->metrics.address == "0.0.0.0");
  CHECK(v4.config->metrics.port == 9100);
  auto v6 = with("[::1]:9464");
  REQUIRE(v6.config);
  CHECK(v6.config->metrics.address == "::1");
  CHECK(v6.config->metrics.listen() == "[::1]:9464");
  // Off, on loopback, unless said.
  auto plain = load(read_file(example_path));
  REQUIRE(plain.config);
  CHECK_FALSE(plain.config->metrics.enabled);
  CHECK(plain.config->metrics.listen() == "127.0.0.1:9464");
  // An IPv6 address without brackets would lose its last group to the port.
  for (const char* bad : {"2001:db8::1:9464", "9464", "localhost:9464", "127.0.0.1:0", "127.0.0.1:65536",
                          "127.0.0.1:94x", "[::1]", "[127.0.0.1]:9464"}) {
    CAPTURE(bad);
    auto r = with(bad);
    REQUIRE_FALSE(r.config);
    CHECK(r.error_text().find("metrics.listen") != std::string::npos);
    CHECK(r.error_text().find("is not ADDRESS:PORT") != std::string::npos);
  }
}
