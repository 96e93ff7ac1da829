// Remote diagnostics (docs/uplink.md, "Commands"): the platform reads a box's recent log lines and
// what firegatectl status and devices show, over cmd/reply, in parts within the broker's message
// size. The broker is a real mosquitto whose max_packet_size is just over the site's
// max_message_bytes: a part over it would cost the gateway its connection and the part, which the
// test would see missing. Off unless the site allows them.

#include "support.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <regex>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

const std::string diag_cmd_topic = "firegate/site-test/gw-test/cmd";

/// Every reply to command `id` until its `parts` have come, by part number; empty when they do not.
std::map<int, json> parts_of(mqtt_probe& platform, const std::string& id, const std::string& key) {
  std::map<int, json> out;
  wait_until(
      [&] {
        out.clear();
        int parts = -1;
        for (const auto& m : platform.messages()) {
          if (!m.topic.ends_with("/cmd/reply")) continue;
          auto j = json::parse(m.payload, nullptr, false);
          if (!j.is_object() || j.value("id", "") != id || !j.contains(key) || !j[key].is_object()) {
            if (j.is_object() && j.value("id", "") == id)
              UNSCOPED_INFO("reply without " << key << ": " << m.payload);
            continue;
          }
          parts = j[key].value("parts", -1);
          const int part = j[key].value("part", 0);
          out[part] = std::move(j);
        }
        return parts > 0 && out.size() == static_cast<std::size_t>(parts);
      },
      10s);
  return out;
}

/// The largest reply payload seen for command `id`.
std::size_t largest_reply(mqtt_probe& platform, const std::string& id) {
  std::size_t most = 0;
  for (const auto& m : platform.messages()) {
    if (!m.topic.ends_with("/cmd/reply")) continue;
    const auto j = json::parse(m.payload, nullptr, false);
    if (j.is_object() && j.value("id", "") == id) most = std::max(most, m.payload.size());
  }
  return most;
}

}  // namespace

TEST_CASE(
    "remote diagnostics: logs at a level in parts within the broker's message size - diagnostics joined "
    "from its parts is firegatectl's status and devices - off unless allowed") {
  temp_dir dir;
  // Packets over 4,096 bytes are refused, and the site says so: the topic and the header fit in it.
  broker mosquitto(dir, 0, false, "max_packet_size 4096");
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 2);
  auto text = std::regex_replace(sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2),
                                 std::regex("keepalive_s = 5\n"),
                                 "keepalive_s = 5\ncommands = [\"status\", \"logs\", \"diagnostics\"]\n"
                                 "max_message_bytes = 4096\n");
  std::ofstream(dir / "fg.toml") << text;
  // At debug: more lines than one message holds.
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string(), "-l", "debug"}, dir / "fg.log");
  INFO(daemon.log_text());
  REQUIRE(wait_until(
      [&] { return daemon.log_text().find("uplink commands subscribed") != std::string::npos; }, 20s));
  // Something to read at warn: a device that stops answering, three times (and more lines than one
  // message holds: firegated is a quiet daemon), left offline.
  std::uint64_t seq = 0;
  for (int round = 0; round < 3; ++round) {
    for (const auto* type : {"device_offline", "device_online"}) {
      if (round == 2 && std::string(type) == "device_online") break;
      sim.send(std::string("2 answering ") + (std::string(type) == "device_offline" ? "0" : "1"));
      const auto e = wait_event_where(
          platform, type, [&](const json& j) { return j.value("seq", std::uint64_t{0}) > seq; }, 20s);
      REQUIRE(e);
      seq = (*e)["seq"].get<std::uint64_t>();
    }
  }

  // Every line at debug and above, more than one message holds.
  platform.publish(
      diag_cmd_topic,
      command_text("logs-1", "logs", {{"lines", 5000}, {"level", "debug"}, {"max_bytes", 1048576}}));
  auto parts = parts_of(platform, "logs-1", "logs");
  REQUIRE(parts.size() >= 1);
  // Within the broker's packet with the topic and header (a part over it would never have come).
  CHECK(largest_reply(platform, "logs-1") <= 4096 - (diag_cmd_topic + "/reply").size() - 9);
  std::vector<std::string> lines;
  for (const auto& [n, j] : parts) {
    CHECK(j["ok"] == true);
    for (const auto& l : j["logs"]["lines"]) lines.push_back(l.get<std::string>());
  }
  INFO("lines " << lines.size() << " parts " << parts.size() << ":\n"
                << fmt::format("{}", fmt::join(lines, "\n")));
  CHECK(parts.begin()->second["logs"]["count"] == lines.size());
  // The daemon's own lines, as its log on stderr has them (the same text after the time and level).
  const auto has = [&](const std::string& what) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(what) != std::string::npos; });
  };
  CHECK(has(" info uplink connected"));
  CHECK(has(" warning device offline"));
  CHECK(has(" debug "));
  CHECK(has("command done id=logs-1") == false);  // logged after its reply is made
  CHECK(parts.size() > 1);

  // At warn, the last 5: no info line among them.
  platform.publish(diag_cmd_topic, command_text("logs-2", "logs", {{"lines", 5}, {"level", "warn"}}));
  parts = parts_of(platform, "logs-2", "logs");
  REQUIRE(parts.size() == 1);
  const auto& warn = parts.begin()->second["logs"];
  CHECK(warn["lines"].size() <= 5);
  CHECK(warn["lines"].size() >= 1);
  for (const auto& l : warn["lines"]) {
    const auto s = l.get<std::string>();
    CHECK((s.find(" warning ") != std::string::npos || s.find(" error ") != std::string::npos ||
           s.find(" critical ") != std::string::npos));
  }

  // A bad level: refused, saying which there are.
  platform.publish(diag_cmd_topic, command_text("logs-3", "logs", {{"level", "loud"}}));
  const auto bad = reply_to(platform, "logs-3");
  REQUIRE(bad);
  CHECK((*bad)["ok"] == false);
  CHECK((*bad)["error"].get<std::string>().find("\"warn\"") != std::string::npos);

  // Diagnostics: parts whose texts joined are one JSON document, firegatectl's status and devices.
  platform.publish(diag_cmd_topic, command_text("diag-1", "diagnostics", json::object()));
  parts = parts_of(platform, "diag-1", "diagnostics");
  REQUIRE(parts.size() > 1);  // two devices' counters and the status do not fit 4 KB
  CHECK(largest_reply(platform, "diag-1") <= 4096 - (diag_cmd_topic + "/reply").size() - 9);
  std::string joined;
  for (const auto& [n, j] : parts) joined += j["diagnostics"]["text"].get<std::string>();
  CHECK(parts.begin()->second["diagnostics"]["bytes"] == joined.size());
  const auto doc = json::parse(joined, nullptr, false);
  REQUIRE(doc.is_object());
  const auto on_site = ctl(dir, {"--json", "status"}).doc();
  CHECK(doc["status"]["gateway"]["id"] == on_site["gateway"]["id"]);
  CHECK(doc["status"]["configuration"]["revision"] == on_site["configuration"]["revision"]);
  REQUIRE(doc["devices"].size() == 2);
  const auto* smoke2 = find_by(doc["devices"], "name", "smoke-2");
  REQUIRE(smoke2 != nullptr);
  CHECK((*smoke2)["online"] == false);
  CHECK((*smoke2)["timeouts"].get<int>() > 0);
  CHECK(!(*smoke2)["last_error"].get<std::string>().empty());
  CHECK(doc["log"].is_array());
  // The gateway kept its connection through it all (a part too large would have cost it).
  CHECK(daemon.log_text().find("uplink connection lost") == std::string::npos);
}

TEST_CASE("remote diagnostics: logs and diagnostics are refused where the site has not allowed them") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 1);
  std::ofstream(dir / "fg.toml") << sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(wait_until(
      [&] { return daemon.log_text().find("uplink commands subscribed") != std::string::npos; }, 20s));
  for (const auto* name : {"logs", "diagnostics"}) {
    platform.publish(diag_cmd_topic, command_text(std::string("off-") + name, name, json::object()));
    const auto r = reply_to(platform, std::string("off-") + name);
    REQUIRE(r);
    INFO(r->dump());
    CHECK((*r)["ok"] == false);
    CHECK(!r->contains("logs"));
    CHECK(!r->contains("diagnostics"));
  }
}
