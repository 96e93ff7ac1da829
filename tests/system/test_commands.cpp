// Platform commands that cannot be replayed (docs/uplink.md, "Commands"): a retained command is
// never carried out, a command id is carried out once (across a restart, the first reply is sent
// again), an old command is refused, and a shield is bounded by the site. Real firegated, real
// firegate-sim, real mosquitto; the platform is a test client on the broker.

#include "support.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <ctime>
#include <fstream>
#include <regex>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

const std::string cmd_topic = "firegate/site-test/gw-test/cmd";

std::size_t count_events(mqtt_probe& platform, const std::string& type, const std::string& device = "") {
  std::size_t n = 0;
  for (const auto& m : platform.messages()) {
    if (!is_event(m, type)) continue;
    const auto j = json::parse(m.payload, nullptr, false);
    n += device.empty() || j["device"].value("name", "") == device;
  }
  return n;
}

/// Every reply to command `id` so far.
std::vector<json> replies_to(mqtt_probe& platform, const std::string& id) {
  std::vector<json> out;
  for (const auto& m : platform.messages()) {
    if (!m.topic.ends_with("/cmd/reply")) continue;
    auto j = json::parse(m.payload, nullptr, false);
    if (j.is_object() && j.value("id", "") == id) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

TEST_CASE(
    "commands: a retained shield is never carried out - an id is carried out once, across a restart - "
    "an old command and a shield over the site's limit are refused") {
  temp_dir dir;
  broker mosquitto(dir);
  simulator sim(dir, 2);
  auto text = std::regex_replace(
      sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2), std::regex("keepalive_s = 5\n"),
      "keepalive_s = 5\ncommands = [\"ack\", \"shield\", \"unshield\", \"test_mode\", \"status\"]\n");
  text += "[alarms]\nshield_max_hours = 2\n";
  std::ofstream(dir / "fg.toml") << text;

  // A shield left retained on the cmd topic (a platform bug, or someone replaying it) before the
  // gateway subscribes: the broker hands it over on subscribing, and it is refused.
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  const auto retained_shield =
      command_text("r1", "shield", {{"device", "smoke-1"}, {"minutes", 60}, {"reason", "old"}, {"by", "x"}});
  platform.publish(cmd_topic, retained_shield, true);
  auto daemon = std::make_unique<child>(
      std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg-1.log");
  const auto refused = reply_to(platform, "r1");
  INFO(daemon->log_text());
  REQUIRE(refused);
  CHECK((*refused)["ok"] == false);
  CHECK((*refused)["error"].get<std::string>().find("retained message") != std::string::npos);
  CHECK(count_events(platform, "device_shielded") == 0);
  platform.publish(cmd_topic, "", true);  // the platform clears it

  // A shield carried out once; the same command again (a replay, or sent again after a lost
  // reply) gets its first reply again, marked repeated, and shields nothing twice.
  const auto shield = command_text(
      "c1", "shield", {{"device", "smoke-1"}, {"minutes", 30}, {"reason", "dust"}, {"by", "tech 7"}});
  platform.publish(cmd_topic, shield);
  const auto first = reply_to(platform, "c1");
  REQUIRE(first);
  REQUIRE((*first)["ok"] == true);
  platform.publish(cmd_topic, command_text("c2", "unshield", {{"device", "smoke-1"}, {"by", "tech 7"}}));
  REQUIRE(reply_to(platform, "c2"));
  platform.publish(cmd_topic, shield);
  REQUIRE(wait_until([&] { return replies_to(platform, "c1").size() == 2; }, 10s));
  auto again = replies_to(platform, "c1")[1];
  CHECK(again["repeated"] == true);
  CHECK(again["events"] == (*first)["events"]);
  CHECK(count_events(platform, "device_shielded") == 1);

  // After a restart, still known: it comes from the store.
  REQUIRE(daemon->stop(SIGTERM) == 0);
  daemon = std::make_unique<child>(
      std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg-2.log");
  REQUIRE(wait_until(
      [&] { return daemon->log_text().find("uplink commands subscribed") != std::string::npos; }, 10s));
  platform.publish(cmd_topic, shield);
  REQUIRE(wait_until([&] { return replies_to(platform, "c1").size() == 3; }, 10s));
  CHECK(replies_to(platform, "c1")[2]["repeated"] == true);
  CHECK(count_events(platform, "device_shielded") == 1);

  // Issued ten minutes ago: refused, with both times.
  const auto old = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", fmt::gmtime(std::time(nullptr) - 600));
  platform.publish(cmd_topic, json{{"id", "c3"}, {"command", "status"}, {"issued", old}}.dump());
  const auto stale = reply_to(platform, "c3");
  REQUIRE(stale);
  CHECK((*stale)["ok"] == false);
  CHECK((*stale)["error"].get<std::string>().find("more than 300 s ago") != std::string::npos);

  // The same id for another command (a platform reusing ids): refused, not answered from memory.
  platform.publish(cmd_topic,
                   command_text("c1", "shield",
                                {{"device", "smoke-2"}, {"minutes", 30}, {"reason", "dust"}, {"by", "x"}}));
  REQUIRE(wait_until([&] { return replies_to(platform, "c1").size() == 4; }, 10s));
  CHECK(replies_to(platform, "c1")[3]["ok"] == false);
  CHECK(replies_to(platform, "c1")[3]["error"].get<std::string>().find("already used") != std::string::npos);

  // Three hours on a site that allows two, for a shield and for a test mode.
  platform.publish(cmd_topic,
                   command_text("c4", "shield",
                                {{"device", "smoke-2"}, {"minutes", 180}, {"reason", "works"}, {"by", "x"}}));
  const auto too_long = reply_to(platform, "c4");
  REQUIRE(too_long);
  CHECK((*too_long)["ok"] == false);
  CHECK((*too_long)["error"].get<std::string>().find("longer than this site allows (2 h") !=
        std::string::npos);
  CHECK(count_events(platform, "device_shielded") == 1);
  CHECK(daemon->stop(SIGTERM) == 0);
}

TEST_CASE("commands: by default a platform cannot shield a detector or put it in test mode") {
  temp_dir dir;
  broker mosquitto(dir);
  simulator sim(dir, 1);
  std::ofstream(dir / "fg.toml") << sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(wait_until(
      [&] { return daemon.log_text().find("uplink commands subscribed") != std::string::npos; }, 10s));
  platform.publish(
      cmd_topic,
      command_text("d1", "shield", {{"device", "smoke-1"}, {"minutes", 5}, {"reason", "x"}, {"by", "x"}}));
  platform.publish(cmd_topic,
                   command_text("d2", "test_mode", {{"device", "smoke-1"}, {"on", true}, {"by", "x"}}));
  platform.publish(cmd_topic, command_text("d3", "status"));
  for (const auto* id : {"d1", "d2"}) {
    const auto r = reply_to(platform, id);
    REQUIRE(r);
    CHECK((*r)["ok"] == false);
    CHECK((*r)["error"].get<std::string>().find("not accepted by this gateway") != std::string::npos);
  }
  const auto status = reply_to(platform, "d3");
  REQUIRE(status);
  CHECK((*status)["ok"] == true);
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE(
    "commands: with a command key only commands signed with it are taken - the signature made by openssl") {
  temp_dir dir;
  broker mosquitto(dir);
  simulator sim(dir, 1);
  const std::string key = "3f1c0de6b2a94d5e8c7b1a0f9e8d7c6b5a49382716f5e4d3c2b1a09f8e7d6c5b";
  std::ofstream(dir / "command.key") << key << "\n";
  std::filesystem::permissions(dir / "command.key",
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const auto text = std::regex_replace(sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1),
                                       std::regex("keepalive_s = 5\n"),
                                       "keepalive_s = 5\ncommand_key_file = \"command.key\"\n");
  std::ofstream(dir / "fg.toml") << text;
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(wait_until(
      [&] { return daemon.log_text().find("uplink commands subscribed") != std::string::npos; }, 10s));
  // Signed by the openssl command line, not by firegate's code.
  const auto sign = [&](const std::string& inner, const std::string& with) {
    std::ofstream(dir / "inner.json") << inner;
    std::string out;
    child c({"/usr/bin/openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", "key:" + with,
             (dir / "inner.json").string()},
            dir / "openssl.out");
    REQUIRE(c.stop(0, 10s) == 0);
    out = read_text(dir / "openssl.out");
    const auto mac = out.substr(out.rfind(' ') + 1, 64);
    return json{{"signed", inner}, {"hmac", mac}}.dump();
  };
  platform.publish(cmd_topic, sign(command_text("k1", "status"), key));
  const auto ok = reply_to(platform, "k1");
  INFO(daemon.log_text());
  REQUIRE(ok);
  CHECK((*ok)["ok"] == true);
  platform.publish(cmd_topic, command_text("k2", "status"));                              // not signed
  platform.publish(cmd_topic, sign(command_text("k3", "status"), std::string(64, '0')));  // another key
  const auto unsigned_reply = reply_to(platform, "k2");
  REQUIRE(unsigned_reply);
  CHECK((*unsigned_reply)["ok"] == false);
  CHECK((*unsigned_reply)["error"].get<std::string>().find("takes only signed commands") !=
        std::string::npos);
  const auto wrong = reply_to(platform, "k3");
  REQUIRE(wrong);
  CHECK((*wrong)["ok"] == false);
  CHECK((*wrong)["error"].get<std::string>().find("does not match") != std::string::npos);
  CHECK(daemon.log_text().find(key) == std::string::npos);  // the key is never logged
  CHECK(daemon.stop(SIGTERM) == 0);

  // A key open to other users is refused at the configuration check.
  std::filesystem::permissions(dir / "command.key", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  child check({firegated_path(), "--check-config", (dir / "fg.toml").string()}, dir / "check.log");
  CHECK(check.stop(0, 10s) == 1);
  CHECK(read_text(dir / "check.log").find("is open to other users") != std::string::npos);
}
