// firegatectl config show: the configuration in force, as TOML that loads unchanged. A site with
// rule and report overrides on an EFD-4T and an SD-1 is run by a real firegated; what `config show`
// prints is checked by firegated --check-config, then run by a second firegated, whose `config show
// --json` must be the first one's (but for the file it was read from).

#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

TEST_CASE(
    "firegatectl config show: overrides in force, numbers as numbers - its TOML passes --check-config and "
    "loads as the same configuration") {
  temp_dir dir;
  broker mosquitto(dir);
  simulator sim(dir, std::vector<std::string>{"--devices", "SD-1:1", "EFD-4T:2"});
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  // Signed commands: the key's file is part of the configuration and carries over.
  std::ofstream(dir / "command.key") << std::string(64, 'a') << "\n";
  std::filesystem::permissions(dir / "command.key",
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  text.replace(text.find("keepalive_s = 5\n"), 16,
               "keepalive_s = 5\ncommand_key_file = \"" + (dir / "command.key").string() + "\"\n");
  // The issue's example: an EFD-4T whose leakage the site sets at 500 mA, its profile at 300; a
  // smoke detector that sends its smoke value every poll; a rule switched off.
  text += R"([devices.report.smoke]
on = "poll"
at_most_every_s = 5
[[devices]]
name = "efd-1"
bus = "tcp-1"
profile = "EFD-4T"
unit_id = 2
location = "1F distribution board"
[devices.rules.leakage]
set = 500
delay_ms = 2000
[devices.rules.cable_1_rising]
enabled = false
[devices.report.residual_current]
on = "change"
deadband = 25
at_least_every_s = 600
)";
  std::ofstream(dir / "fg.toml") << text;

  json first;
  {
    child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
    const bool up = wait_until([&] { return ctl(dir, {"--json", "status"}).exit == 0; }, 10s);
    INFO(daemon.log_text());
    REQUIRE(up);
    const auto shown = ctl(dir, {"--json", "config", "show"});
    REQUIRE(shown.exit == 0);
    first = shown.doc();
    // Numbers as numbers; the overrides in force beside the profile's.
    CHECK(first["uplink"]["mqtt"]["telemetry_rate"].is_number_integer());
    CHECK(first["uplink"]["mqtt"]["command_key_file"] == (dir / "command.key").string());
    CHECK(first["buses"][0]["settings"]["timeout_ms"] == 500);
    CHECK_FALSE(first["buses"][0]["settings"].contains("broadcast_turnaround_ms"));  // a TCP bus
    const auto* efd = find_by(first["devices"], "name", "efd-1");
    REQUIRE(efd != nullptr);
    CHECK((*efd)["settings"]["unit_id"] == 2);
    CHECK((*efd)["rules"]["leakage"]["set"] == 500.0);
    CHECK((*efd)["rules"]["leakage"]["clear"] == 470.0);  // the profile's 30 mA of hysteresis kept
    CHECK((*efd)["rules"]["leakage"]["delay_ms"] == 2000);
    CHECK((*efd)["rules"]["cable_1_rising"]["enabled"] == false);
    CHECK_FALSE((*efd)["rules"].contains("cable_1_over_temperature"));  // as the profile has it
    CHECK((*efd)["report"]["residual_current"] ==
          json({{"on", "change"}, {"deadband", 25.0}, {"at_least_every_s", 600}}));
    CHECK((*find_by(first["devices"], "name", "smoke-1"))["report"]["smoke"] ==
          json({{"on", "poll"}, {"at_most_every_s", 5}}));

    const auto toml = ctl(dir, {"config", "show"});
    REQUIRE(toml.exit == 0);
    CHECK(toml.out.find("[devices.rules.leakage]\nclear = 470.0\ndelay_ms = 2000\nset = 500.0\n") !=
          std::string::npos);
    std::ofstream(dir / "shown.toml") << toml.out;

    // The detector, at 320 mA, alarms by its own setting (300 mA) while the site's rule is at 500:
    // `device` shows the rule in force beside the value and the device's own output, and says why.
    sim.send("2 residual_current 320");
    json leakage;
    REQUIRE(wait_until(
        [&] {
          const auto d = ctl(dir, {"--json", "device", "efd-1"}).doc();
          if (!d.is_object() || !d.contains("rules")) return false;
          const auto* r = find_by(d["rules"], "name", "leakage");
          if (r == nullptr || r->value("note", "").find("own alarm is on") == std::string::npos) return false;
          leakage = *r;
          return true;
        },
        20s));
    INFO(leakage.dump());
    CHECK(leakage["set"] == 500.0);
    CHECK(leakage["from"] == "site");
    CHECK(leakage["profile_set"] == 300.0);
    CHECK(leakage["value"].get<double>() > 300.0);  // 320 mA, with the simulator's noise on it
    CHECK(leakage["value"].get<double>() < 500.0);
    CHECK(leakage["device_alarm"] == json({{"point", "leakage_alarm"}, {"value", 1.0}}));
    CHECK(leakage["device_setting"] == json({{"point", "leakage_alarm_setting"}, {"value", 300.0}}));
    // The text as the JSON above: waited for, since each request reads the device's latest poll.
    const std::string note =
        "note  leakage: the device's own alarm is on (leakage_alarm = 1 at its own setting 300 mA) while the "
        "gateway's rule is set at 500 mA (the site's; the profile's is 300 mA) and the reading is 3";
    std::string shown_device;
    const bool note_shown = wait_until(
        [&] {
          shown_device = ctl(dir, {"device", "efd-1"}).out;
          return shown_device.find(note) != std::string::npos;
        },
        20s);
    INFO(shown_device);
    CHECK(shown_device.find(">= 500 (site; profile 300)") != std::string::npos);
    CHECK(note_shown);
    CHECK(ctl(dir, {"--json", "alarms"}).doc()["open"].empty());  // the gateway raised nothing
    CHECK(daemon.stop(SIGTERM) == 0);
  }
  // The shown file, unchanged: checked, then run.
  child check({firegated_path(), "--check-config", (dir / "shown.toml").string()}, dir / "check.log");
  const int checked = check.stop(0, 10s);
  INFO(read_text(dir / "check.log"));
  INFO(read_text(dir / "shown.toml"));
  REQUIRE(checked == 0);
  child again({firegated_path(), "-c", (dir / "shown.toml").string()}, dir / "again.log");
  const bool up = wait_until([&] { return ctl(dir, {"--json", "status"}).exit == 0; }, 10s);
  INFO(again.log_text());
  REQUIRE(up);
  auto second = ctl(dir, {"--json", "config", "show"}).doc();
  first.erase("file");
  second.erase("file");
  CHECK(second.dump(2) == first.dump(2));
}
