// Configuration changes from the platform (docs/remote.md): a change stands only once the platform
// confirms it; one that cuts the box off, or one the box restarts in the middle of, is rolled back
// by itself; a broken one is refused with its errors and changes nothing. Real firegated, real
// firegate-sim, real mosquitto; the platform is a test client on the broker; firegatectl on site.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

const std::string remote_cmd_topic = "firegate/site-test/gw-test/cmd";

/// A two-detector site that takes configuration changes, confirmed within `confirm_s`.
std::string remote_site(const temp_dir& dir, std::uint16_t broker_port, std::uint16_t modbus_port,
                        int confirm_s) {
  auto text = std::regex_replace(sd1_site_config(dir / "fg.db", broker_port, modbus_port, 2),
                                 std::regex("keepalive_s = 5\n"),
                                 "keepalive_s = 5\ncommands = [\"ack\", \"status\", \"config_apply\", "
                                 "\"config_confirm\"]\n");
  return text + fmt::format("[remote]\nconfirm_s = {}\n", confirm_s);
}

std::string revision_now(const temp_dir& dir) {
  const auto s = ctl(dir, {"--json", "status"}).doc();
  return s.is_object() ? s["configuration"].value("revision", "") : "";
}

std::size_t devices_now(const temp_dir& dir) {
  const auto s = ctl(dir, {"--json", "status"}).doc();
  return s.is_object() ? s["devices"].value("total", std::size_t{0}) : 0;
}

std::unique_ptr<child> start_daemon(const temp_dir& dir, const std::string& log) {
  auto d = std::make_unique<child>(
      std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()}, dir / log);
  REQUIRE(
      wait_until([&] { return d->log_text().find("uplink commands subscribed") != std::string::npos; }, 20s));
  return d;
}

/// A box on a broker with its simulated detectors, started, and the platform listening.
struct remote_box {
  remote_box(int simulated, int confirm_s)
      : sim(dir, simulated), site(remote_site(dir, mosquitto.port(), sim.port(), confirm_s)) {
    std::ofstream(dir / "fg.toml") << site;
    daemon = start_daemon(dir, "fg-1.log");
    original = revision_now(dir);
  }
  temp_dir dir;
  broker mosquitto{dir};
  simulator sim;
  std::string site;
  mqtt_probe platform{mosquitto.port(), "firegate/#"};
  std::unique_ptr<child> daemon;
  std::string original;  ///< the site file's revision (12 digits)
};

}  // namespace

TEST_CASE(
    "remote config: a broken change is refused with its errors - a patch applied and confirmed stands "
    "across a restart - firegatectl puts back any kept revision - an edit on site wins") {
  remote_box box(3, 60);
  auto [dir, platform, daemon, site, original] =
      std::tie(box.dir, box.platform, box.daemon, box.site, box.original);
  INFO(daemon->log_text());
  REQUIRE(original.size() == 12);

  // A whole file with two mistakes: refused with both, each at its line, and nothing changes.
  auto broken = site +
                "[[devices]]\nname = \"smoke-9\"\nbus = \"tcp-9\"\nprofile = \"SD-1\"\nunit_id = 9\n"
                "location = \"room 9\"\n";
  broken = std::regex_replace(broken, std::regex("flush_interval_ms = 200"), "flush_interval_ms = \"fast\"");
  platform.publish(remote_cmd_topic,
                   command_text("bad-1", "config_apply", {{"file", broken}, {"by", "ops-li"}}));
  const auto refused = reply_to(platform, "bad-1");
  REQUIRE(refused);
  INFO(refused->dump());
  CHECK((*refused)["ok"] == false);
  CHECK((*refused)["error"].get<std::string>().find("refused with 2 errors") != std::string::npos);
  REQUIRE((*refused)["errors"].size() == 2);
  const auto errors = (*refused)["errors"].dump();
  CHECK(errors.find("config_apply bad-1:") != std::string::npos);
  CHECK(errors.find("flush_interval_ms") != std::string::npos);
  CHECK(errors.find("tcp-9") != std::string::npos);
  CHECK(revision_now(dir) == original);

  // A patch that sets what is already there: nothing to change.
  platform.publish(remote_cmd_topic,
                   command_text("n-0", "config_apply",
                                {{"patch", {{"set", {{"storage.flush_interval_ms", 200}}}}}, {"by", "x"}}));
  const auto same = reply_to(platform, "n-0");
  REQUIRE(same);
  CHECK((*same)["ok"] == false);
  CHECK((*same)["error"].get<std::string>().find("nothing to change") != std::string::npos);

  // What only the site may change: refused, whatever else the change does.
  const json commands{"ack", "shield", "config_apply", "config_confirm"};
  platform.publish(remote_cmd_topic,
                   command_text("p-0", "config_apply",
                                {{"patch", {{"set", {{"uplink.mqtt.commands", commands}}}}}, {"by", "x"}}));
  const auto site_only = reply_to(platform, "p-0");
  REQUIRE(site_only);
  CHECK((*site_only)["ok"] == false);
  CHECK((*site_only)["error"].get<std::string>().find(
            "[uplink.mqtt] commands, which only the site file sets") != std::string::npos);

  // A patch: a device added and a setting changed. In force at once, waiting for its confirmation.
  const json patch{{"add",
                    {{"devices", json::array({{{"name", "smoke-3"},
                                               {"bus", "tcp-1"},
                                               {"profile", "SD-1"},
                                               {"unit_id", 3},
                                               {"location", "room 3"}}})}}},
                   {"set", {{"alarms.escalate_after_s", 600}}}};
  platform.publish(
      remote_cmd_topic,
      command_text("p-1", "config_apply", {{"patch", patch}, {"by", "ops-li"}, {"if_revision", original}}));
  const auto applied = reply_to(platform, "p-1");
  REQUIRE(applied);
  INFO(applied->dump());
  REQUIRE((*applied)["ok"] == true);
  const auto revision = (*applied)["revision"].get<std::string>();
  CHECK(revision.substr(0, 12) != original);
  CHECK((*applied)["previous"].get<std::string>().starts_with(original));
  CHECK((*applied)["confirm_within_s"] == 60);
  CHECK((*applied)["diff"].get<std::string>().find("+smoke-3") != std::string::npos);
  CHECK((*applied)["diff"].get<std::string>().find("alarms") != std::string::npos);
  const auto changed = wait_event_where(platform, "config_changed", [](const json&) { return true; });
  REQUIRE(changed);
  CHECK((*changed)["detail"].get<std::string>().find("ops-li") != std::string::npos);
  REQUIRE(wait_until([&] { return devices_now(dir) == 3; }, 10s));
  auto status = ctl(dir, {"status"});
  CHECK(status.out.find("NOT YET CONFIRMED") != std::string::npos);

  // A second change while the first waits: refused.
  platform.publish(remote_cmd_topic,
                   command_text("p-2", "config_apply",
                                {{"patch", {{"set", {{"alarms.escalate_after_s", 900}}}}}, {"by", "x"}}));
  const auto busy = reply_to(platform, "p-2");
  REQUIRE(busy);
  CHECK((*busy)["ok"] == false);
  CHECK((*busy)["error"].get<std::string>().find("waits for its confirmation") != std::string::npos);

  // Confirmed: it stands, and a restart keeps it.
  platform.publish(remote_cmd_topic,
                   command_text("c-1", "config_confirm", {{"revision", revision}, {"by", "ops-li"}}));
  const auto confirmed = reply_to(platform, "c-1");
  REQUIRE(confirmed);
  REQUIRE((*confirmed)["ok"] == true);
  REQUIRE(wait_event_where(platform, "config_confirmed", [](const json&) { return true; }));
  REQUIRE(daemon->stop(SIGTERM) == 0);
  daemon = start_daemon(dir, "fg-2.log");
  CHECK(revision_now(dir) == revision.substr(0, 12));
  CHECK(devices_now(dir) == 3);
  CHECK(daemon->log_text().find("config in force is the platform's") != std::string::npos);
  const auto history = ctl(dir, {"--json", "config", "history"}).doc();
  REQUIRE(history.is_object());
  CHECK(history["source"] == "platform");
  REQUIRE(history["changes"].size() >= 2);
  CHECK(history["changes"][0]["action"] == "confirmed");
  CHECK(history["changes"][1]["action"] == "applied");
  CHECK(history["changes"][1]["by"] == "ops-li");

  // On site: back to the site file, then to the platform's again, each at once.
  auto back = ctl(dir, {"config", "rollback", "site"});
  INFO(back.out);
  REQUIRE(back.exit == 0);
  CHECK(revision_now(dir) == original);
  CHECK(devices_now(dir) == 2);
  REQUIRE(ctl(dir, {"config", "rollback", revision.substr(0, 10)}).exit == 0);
  CHECK(revision_now(dir) == revision.substr(0, 12));
  const auto unknown = ctl(dir, {"config", "rollback", "0000000000"});
  CHECK(unknown.exit != 0);
  CHECK(unknown.out.find("no revision 0000000000 among those kept") != std::string::npos);

  // Someone edits the site file and reloads: theirs wins over the platform's.
  std::ofstream(dir / "fg.toml") << site << "# edited on site\n";
  ::kill(daemon->pid(), SIGHUP);
  REQUIRE(wait_until([&] { return devices_now(dir) == 2; }, 10s));
  const auto after = ctl(dir, {"--json", "config", "history"}).doc();
  CHECK(after["source"] == "site file");
  CHECK(after["changes"][0]["action"] == "site_file");
}

TEST_CASE(
    "remote config: a change that points the uplink at a broker that does not exist is rolled back by "
    "itself within confirm_s, and the box is back online") {
  remote_box box(2, 10);
  auto [dir, platform, daemon, site, original] =
      std::tie(box.dir, box.platform, box.daemon, box.site, box.original);
  INFO(daemon->log_text());

  const auto nowhere = std::regex_replace(site, std::regex("port = " + std::to_string(box.mosquitto.port())),
                                          "port = " + std::to_string(free_port()));
  REQUIRE(nowhere != site);
  const auto sent = std::chrono::steady_clock::now();
  platform.publish(remote_cmd_topic,
                   command_text("u-1", "config_apply", {{"file", nowhere}, {"by", "ops-wang"}}));
  // Answered on the connection it came in on, before the change moves the uplink away.
  const auto applied = reply_to(platform, "u-1");
  REQUIRE(applied);
  CHECK((*applied)["ok"] == true);
  // The box leaves the broker: its last will or goodbye says it is offline, then it rolls back.
  const auto rolled = wait_event_where(
      platform, "config_rolled_back", [](const json&) { return true; }, 60s);
  REQUIRE(rolled);
  const auto took = std::chrono::steady_clock::now() - sent;
  const auto detail = (*rolled)["detail"].get<std::string>();
  CHECK(detail.find("the uplink to the platform did not come back within 10 s") != std::string::npos);
  CHECK(detail.find("ops-wang") != std::string::npos);
  // Rolled back at the deadline: the event comes once the box is back on the broker.
  CHECK(took >= 10s);
  CHECK(took < 40s);
  CHECK(revision_now(dir) == original);
  // Online again: a status command answered.
  platform.publish(remote_cmd_topic, command_text("s-1", "status", json::object()));
  const auto st = reply_to(platform, "s-1");
  REQUIRE(st);
  CHECK((*st)["ok"] == true);
  CHECK((*st)["status"]["configuration"]["revision"] == original);
  // The change the reply announced (when it got out) was u-1's; a confirmation now is too late.
  const auto changes = ctl(dir, {"--json", "config", "history"}).doc();
  REQUIRE(changes["changes"].size() == 2);
  CHECK(changes["changes"][0]["action"] == "rolled_back");
  CHECK(changes["changes"][1]["action"] == "applied");
  platform.publish(remote_cmd_topic,
                   command_text("c-late", "config_confirm",
                                {{"revision", changes["changes"][1]["revision"]}, {"by", "ops-wang"}}));
  const auto late = reply_to(platform, "c-late");
  REQUIRE(late);
  CHECK((*late)["ok"] == false);
  CHECK((*late)["error"].get<std::string>().find("was rolled back") != std::string::npos);
}

TEST_CASE(
    "remote config: a box that loses power between a change and its confirmation comes back on the "
    "configuration confirmed before") {
  remote_box box(3, 120);
  auto [dir, platform, daemon, site, original] =
      std::tie(box.dir, box.platform, box.daemon, box.site, box.original);
  INFO(daemon->log_text());
  const json patch{{"add",
                    {{"devices", json::array({{{"name", "smoke-3"},
                                               {"bus", "tcp-1"},
                                               {"profile", "SD-1"},
                                               {"unit_id", 3},
                                               {"location", "room 3"}}})}}}};
  platform.publish(remote_cmd_topic,
                   command_text("k-1", "config_apply", {{"patch", patch}, {"by", "ops-zhao"}}));
  const auto applied = reply_to(platform, "k-1");
  REQUIRE(applied);
  REQUIRE((*applied)["ok"] == true);
  const auto changed = wait_event_where(platform, "config_changed", [](const json&) { return true; });
  REQUIRE(changed);
  REQUIRE(wait_until([&] { return devices_now(dir) == 3; }, 10s));

  // Power lost: no goodbye, no chance to tidy up.
  daemon->stop(SIGKILL);
  daemon = start_daemon(dir, "fg-2.log");
  CHECK(revision_now(dir) == original);
  CHECK(devices_now(dir) == 2);
  const auto rolled = wait_event_where(
      platform, "config_rolled_back", [](const json&) { return true; }, 20s);
  REQUIRE(rolled);
  CHECK((*rolled)["detail"].get<std::string>().find("restarted before change") != std::string::npos);
  // It names the change it undoes, as a recovery names its alarm.
  CHECK((*rolled)["alarm_id"] == (*changed)["id"]);
  // And carries both revisions and what the change was.
  CHECK((*rolled)["configuration"]["previous"] == (*applied)["revision"]);
  CHECK((*rolled)["configuration"]["revision"].get<std::string>().starts_with(original));
  CHECK((*rolled)["configuration"]["diff"] == "devices +smoke-3");
  const auto history = ctl(dir, {"--json", "config", "history"}).doc();
  CHECK(history["source"] == "site file");
  CHECK(history["pending"].is_null());
  CHECK(history["changes"][0]["action"] == "rolled_back");
  // And a further restart changes nothing again.
  REQUIRE(daemon->stop(SIGTERM) == 0);
  daemon = start_daemon(dir, "fg-3.log");
  CHECK(revision_now(dir) == original);
  CHECK(ctl(dir, {"--json", "config", "history"}).doc()["changes"].size() == 2);

  // A damaged record of the changes (half a file, as a bad card leaves): the site file stands and
  // the platform hears it.
  REQUIRE(daemon->stop(SIGTERM) == 0);
  std::ofstream(dir / "config" / "state.json", std::ios::trunc) << "{\"base\": \"12";
  daemon = start_daemon(dir, "fg-4.log");
  CHECK(revision_now(dir) == original);
  REQUIRE(wait_event_where(platform, "config_changed", [](const json& e) {
    return e["detail"].get<std::string>().find("was damaged") != std::string::npos;
  }));
}

TEST_CASE(
    "remote config: a change whose new bus does not start cannot be confirmed, and is rolled back by itself "
    "with the uplink up, saying which bus") {
  remote_box box(2, 10);
  auto [dir, platform, daemon, site, original] =
      std::tie(box.dir, box.platform, box.daemon, box.site, box.original);
  INFO(daemon->log_text());
  // A second Modbus gateway that is not there (nothing listens on its port), with a detector behind it.
  const json bus{{"name", "tcp-9"}, {"driver", "modbus_tcp"}, {"host", "127.0.0.1"}, {"port", free_port()}};
  const json device{
      {"name", "smoke-9"}, {"bus", "tcp-9"}, {"profile", "SD-1"}, {"unit_id", 1}, {"location", "annex"}};
  const json patch{{"add", {{"buses", json::array({bus})}, {"devices", json::array({device})}}}};
  platform.publish(remote_cmd_topic,
                   command_text("b-1", "config_apply", {{"patch", patch}, {"by", "ops-sun"}}));
  const auto applied = reply_to(platform, "b-1");
  REQUIRE(applied);
  REQUIRE((*applied)["ok"] == true);
  const auto revision = (*applied)["revision"].get<std::string>();
  REQUIRE(wait_event_where(platform, "bus_offline",
                           [](const json& e) { return e["device"].value("name", "") == "tcp-9"; }));
  platform.publish(remote_cmd_topic,
                   command_text("b-2", "config_confirm", {{"revision", revision}, {"by", "ops-sun"}}));
  const auto refused = reply_to(platform, "b-2");
  REQUIRE(refused);
  CHECK((*refused)["ok"] == false);
  CHECK((*refused)["error"].get<std::string>().find("bus tcp-9, which the change adds or changes, is down") !=
        std::string::npos);
  const auto rolled = wait_event_where(
      platform, "config_rolled_back", [](const json&) { return true; }, 30s);
  REQUIRE(rolled);
  const auto detail = (*rolled)["detail"].get<std::string>();
  CHECK(detail.find("the platform did not confirm it within 10 s; bus tcp-9 is down") != std::string::npos);
  CHECK(revision_now(dir) == original);
  CHECK(devices_now(dir) == 2);
}

TEST_CASE(
    "remote config: a change waiting for its confirmation given up on site is reported to the platform as "
    "rolled back") {
  remote_box box(3, 60);
  auto [dir, platform, daemon, site, original] =
      std::tie(box.dir, box.platform, box.daemon, box.site, box.original);
  INFO(daemon->log_text());
  const json patch{{"set", {{"alarms.escalate_after_s", 900}}}};
  platform.publish(remote_cmd_topic,
                   command_text("g-1", "config_apply", {{"patch", patch}, {"by", "ops-wu"}}));
  const auto applied = reply_to(platform, "g-1");
  REQUIRE(applied);
  REQUIRE((*applied)["ok"] == true);
  const auto changed = wait_event_where(platform, "config_changed", [](const json&) { return true; });
  REQUIRE(changed);
  const auto back = ctl(dir, {"config", "rollback", "site"});
  INFO(back.out);
  REQUIRE(back.exit == 0);
  const auto rolled = wait_event_where(platform, "config_rolled_back", [](const json&) { return true; });
  REQUIRE(rolled);
  CHECK((*rolled)["alarm_id"] == (*changed)["id"]);
  CHECK((*rolled)["detail"].get<std::string>().find("was given up") != std::string::npos);
  CHECK((*rolled)["configuration"]["previous"] == (*applied)["revision"]);
  CHECK((*rolled)["configuration"]["diff"] == "changed alarms");
  CHECK(revision_now(dir) == original);
  const auto history = ctl(dir, {"--json", "config", "history"}).doc();
  REQUIRE(history["changes"].size() == 3);
  CHECK(history["changes"][0]["action"] == "restored");
  CHECK(history["changes"][1]["action"] == "rolled_back");
  CHECK(history["pending"].is_null());
  platform.publish(remote_cmd_topic, command_text("g-2", "config_confirm",
                                                  {{"revision", (*applied)["revision"]}, {"by", "ops-wu"}}));
  const auto late = reply_to(platform, "g-2");
  REQUIRE(late);
  CHECK((*late)["ok"] == false);
  CHECK((*late)["error"].get<std::string>().find("put back on site by") != std::string::npos);
}
