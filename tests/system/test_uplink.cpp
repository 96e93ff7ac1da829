// The platform uplink's connection and presence end to end: a real firegated, firegate-sim, and a
// real mosquitto with a TLS listener whose certificates openssl makes for the test. The test's
// probe listens on the broker's plain listener, as the platform would behind its own.
//
// TLS: the broker verified against the configured CA; a broker from an unknown CA refused; mutual
// TLS refused without a client certificate and with one from another CA, accepted with the right
// one. Presence: the retained birth message, heartbeats, the goodbye of a clean stop and the last
// will of a killed daemon. Commands: status, the allow-list, expiry.

#include "support.hpp"
#include "uplink/mqtt/commands.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

namespace {

const std::string status_topic = "firegate/site-test/gw-test/status";

/// The site file of sd1_site_config with the uplink on `port` over TLS: `tls` is the body of
/// [uplink.mqtt.tls]; `extra` more [uplink.mqtt] keys.
std::string tls_site_config(const temp_dir& dir, std::uint16_t port, std::uint16_t modbus_port,
                            const std::string& tls, const std::string& extra = "") {
  auto text = sd1_site_config(dir / "fg.db", port, modbus_port, 1);
  const std::string anchor = "keepalive_s = 5\n";
  const auto at = text.find(anchor);
  REQUIRE(at != std::string::npos);
  text.insert(at + anchor.size(), extra + "[uplink.mqtt.tls]\n" + tls);
  return text;
}

std::optional<json> status_of(mqtt_probe& platform, const std::string& state, const std::string& reason,
                              std::chrono::milliseconds timeout = 10s) {
  auto m = platform.wait_for(
      [&](auto& msg) {
        if (msg.topic != status_topic) return false;
        auto j = json::parse(msg.payload, nullptr, false);
        return j.is_object() && j.value("state", "") == state && j.value("reason", "") == reason;
      },
      timeout);
  return m ? std::optional(json::parse(m->payload)) : std::nullopt;
}

bool published_anything(mqtt_probe& platform) {
  for (const auto& m : platform.messages()) {
    if (!m.topic.ends_with("/cmd")) return true;
  }
  return false;
}

/// A TLS test's world: certificates, a broker with a TLS listener, the platform's probe on its
/// plain listener, and a simulator with one SD-1.
struct tls_rig {
  explicit tls_rig(bool require_certificate, const std::string& filter = "firegate/#")
      : pki(make_test_pki(dir)),
        mosquitto(dir, pki, require_certificate),
        platform(mosquitto.port(), filter),
        sim(dir, 1) {}
  /// The [uplink.mqtt.tls] line naming the broker's CA.
  std::string ca() const { return fmt::format("ca_file = \"{}\"\n", pki.ca.string()); }
  /// firegated on tls_site_config(`tls`, `extra`), as NAME.toml with its log in NAME.log.
  std::unique_ptr<child> gateway(const std::string& tls, const std::string& name = "fg",
                                 const std::string& extra = "") {
    std::ofstream(dir / (name + ".toml"))
        << tls_site_config(dir, mosquitto.tls_port(), sim.port(), tls, extra);
    return std::make_unique<child>(
        std::vector<std::string>{firegated_path(), "-c", (dir / (name + ".toml")).string()},
        dir / (name + ".log"));
  }
  temp_dir dir;
  test_pki pki;
  broker mosquitto;
  mqtt_probe platform;
  simulator sim;
};

}  // namespace

TEST_CASE(
    "uplink: over TLS with the broker verified - birth - heartbeat - status command - allow-list - expiry - "
    "goodbye on stop") {
  tls_rig rig(false);
  auto& platform = rig.platform;
  auto& sim = rig.sim;
  auto gateway =
      rig.gateway(rig.ca(), "fg", "heartbeat_s = 1\ncommands = [\"ack\", \"status\", \"test_mode\"]\n");
  auto& daemon = *gateway;
  INFO(daemon.log_text());

  auto birth = status_of(platform, "online", "connected");
  REQUIRE(birth);
  CHECK((*birth)["schema"] == "firegate.status/1");
  CHECK((*birth)["gateway"] == "gw-test");
  CHECK((*birth)["site"] == "site-test");
  CHECK((*birth)["version"] == FIREGATE_VERSION);
  CHECK((*birth)["devices"]["total"] == 1);
  CHECK((*birth)["uplink_connects"] == 1);
  CHECK((*birth)["storage"]["state"] == "ok");
  CHECK(daemon.log_text().find("tls=on") != std::string::npos);

  // A fire alarm travels over TLS; the heartbeat then counts it and the device online.
  sim.send("1 state 1");
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/alarm"); }, 10s));
  auto beat = platform.wait_for(
      [](auto& m) {
        auto j = json::parse(m.payload, nullptr, false);
        return m.topic == status_topic && j.value("reason", "") == "heartbeat" && j["alarms"]["fire"] == 1;
      },
      10s);
  REQUIRE(beat);
  auto heartbeat = json::parse(beat->payload);
  CHECK(heartbeat["alarms"]["unacknowledged"] == 1);
  CHECK(heartbeat["devices"]["online"] == 1);
  CHECK(heartbeat["devices"]["offline"] == 0);
  CHECK(heartbeat["outbox"].contains("telemetry"));
  CHECK(heartbeat["uptime_s"].get<int>() >= 0);
  CHECK(heartbeat["id"] != (*birth)["id"]);

  // The status command answers with the same content, now.
  platform.publish("firegate/site-test/gw-test/cmd", command_text("s1", "status"));
  auto status = reply_to(platform, "s1");
  REQUIRE(status);
  CHECK((*status)["ok"] == true);
  CHECK((*status)["status"]["reason"] == "requested");
  CHECK((*status)["status"]["alarms"]["fire"] == 1);

  // Not on this gateway's allow-list: refused, and nothing happens.
  platform.publish(
      "firegate/site-test/gw-test/cmd",
      command_text("s2", "shield",
                   {{"device", "smoke-1"}, {"minutes", 5}, {"reason", "dust"}, {"by", "tech 7"}}));
  auto refused = reply_to(platform, "s2");
  REQUIRE(refused);
  CHECK((*refused)["ok"] == false);
  CHECK((*refused)["error"].get<std::string>().find("not accepted by this gateway") != std::string::npos);

  // Expired: refused with both times.
  platform.publish("firegate/site-test/gw-test/cmd", json{{"id", "s3"},
                                                          {"command", "status"},
                                                          {"issued", issued_now()},
                                                          {"expires", "2020-01-01T00:00:00+08:00"}}
                                                         .dump());
  auto expired = reply_to(platform, "s3");
  REQUIRE(expired);
  CHECK((*expired)["ok"] == false);
  CHECK((*expired)["error"].get<std::string>().find("expired at 2019-12-31T") != std::string::npos);
  CHECK_FALSE(expired->contains("status"));

  // A clean stop says goodbye: the retained status is "offline", reason "stopped".
  CHECK(daemon.stop(SIGTERM) == 0);
  REQUIRE(status_of(platform, "offline", "stopped"));
  mqtt_probe later(rig.mosquitto.port(), status_topic);  // a platform subscribing afterwards sees it
  REQUIRE(status_of(later, "offline", "stopped"));
  CHECK_FALSE(status_of(platform, "offline", "connection lost", 1s));  // a clean stop sends no last will
}

TEST_CASE("uplink: a daemon killed without a goodbye is reported offline by its last will - retained") {
  tls_rig rig(false, status_topic);
  auto& platform = rig.platform;
  auto gateway = rig.gateway(rig.ca());
  auto& daemon = *gateway;
  INFO(daemon.log_text());
  REQUIRE(status_of(platform, "online", "connected"));
  daemon.stop(SIGKILL);
  auto will = status_of(platform, "offline", "connection lost");
  REQUIRE(will);
  CHECK((*will)["gateway"] == "gw-test");
  mqtt_probe later(rig.mosquitto.port(), status_topic);
  REQUIRE(status_of(later, "offline", "connection lost"));
}

TEST_CASE("uplink: a broker whose certificate is from another CA is refused - nothing is sent to it") {
  tls_rig rig(false);
  auto& platform = rig.platform;
  auto gateway = rig.gateway(fmt::format("ca_file = \"{}\"\n", rig.pki.rogue_ca.string()));
  auto& daemon = *gateway;
  const bool refused =
      wait_until([&] { return daemon.log_text().find("uplink connect failed") != std::string::npos; }, 10s);
  const auto log = daemon.log_text();
  INFO(log);
  REQUIRE(refused);
  CHECK(log.find("tls=on") != std::string::npos);
  CHECK(log.find("its certificate signed by ca_file") != std::string::npos);
  CHECK_FALSE(published_anything(platform));
}

TEST_CASE(
    "uplink: mutual TLS - refused without a client certificate and with one from another CA - accepted with "
    "the right one") {
  tls_rig rig(true);
  auto& platform = rig.platform;
  auto& sim = rig.sim;
  const auto run = [&](const std::string& tls, const std::string& name) { return rig.gateway(tls, name); };
  const auto ca = rig.ca();
  const auto& pki = rig.pki;
  const auto refused = [&](child& daemon) {
    INFO(daemon.log_text());
    CHECK(wait_until([&] { return daemon.log_text().find("uplink connect failed") != std::string::npos; },
                     10s));
    CHECK_FALSE(published_anything(platform));
  };

  auto anonymous = run(ca, "no-cert");
  refused(*anonymous);
  anonymous->stop(SIGTERM);

  auto rogue = run(ca + fmt::format("cert_file = \"{}\"\nkey_file = \"{}\"\n", pki.rogue_cert.string(),
                                    pki.rogue_key.string()),
                   "rogue-cert");
  refused(*rogue);
  rogue->stop(SIGTERM);

  auto good = run(ca + fmt::format("cert_file = \"{}\"\nkey_file = \"{}\"\n", pki.client_cert.string(),
                                   pki.client_key.string()),
                  "client-cert");
  INFO(good->log_text());
  REQUIRE(status_of(platform, "online", "connected"));
  sim.send("1 state 1");
  CHECK(platform.wait_for([](auto& m) { return m.topic.ends_with("/alarm"); }, 10s));
}

TEST_CASE("commands: a read waiting for a silent detector does not hold up a stop") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 1);
  std::ofstream(dir / "fg.toml") << sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  REQUIRE(status_of(platform, "online", "connected"));
  sim.send("1 answering 0");
  REQUIRE(platform.wait_for(
      [](auto& m) {
        auto j = json::parse(m.payload, nullptr, false);
        return j.is_object() && j.value("type", "") == "device_offline";
      },
      15s));
  const auto send = [&](json cmd) {
    cmd["issued"] = issued_now();
    platform.publish("firegate/site-test/gw-test/cmd", cmd.dump());
  };
  // A silent detector gives no readings: the read waits for its 10 s ("no answer from smoke-1").
  send({{"id", "r1"}, {"command", "read"}, {"args", {{"device", "smoke-1"}}}});
  // Commands are taken in order: once this one is answered, the read is under way.
  send({{"id", "s1"}, {"command", "status"}});
  REQUIRE(reply_to(platform, "s1"));
  // The stop gives up the read (the platform asks again) instead of waiting out its 10 s.
  CHECK(daemon.stop(SIGTERM, 8s) == 0);  // the read had more than 9 s left
}

TEST_CASE(
    "commands: read polls a device now and answers with its values - self_test travels the whole path and "
    "ends "
    "when the platform acknowledges it") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 1);
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  REQUIRE(status_of(platform, "online", "connected"));
  const auto send = [&](json cmd) {
    cmd["issued"] = issued_now();
    platform.publish("firegate/site-test/gw-test/cmd", cmd.dump());
  };

  sim.send("1 state 1");
  send({{"id", "r1"}, {"command", "read"}, {"args", {{"device", "smoke-1"}, {"point", "state"}}}});
  auto read = reply_to(platform, "r1");
  REQUIRE(read);
  CHECK((*read)["ok"] == true);
  REQUIRE((*read)["readings"].size() == 1);
  CHECK((*read)["readings"][0]["point"] == "state");
  CHECK((*read)["readings"][0]["value"] == 1.0);
  CHECK((*read)["readings"][0]["quality"] == "good");

  send({{"id", "r2"}, {"command", "read"}, {"args", {{"device", "smoke-1"}}}});
  auto all = reply_to(platform, "r2");
  REQUIRE(all);
  CHECK((*all)["readings"].size() > 1);

  send({{"id", "r3"}, {"command", "read"}, {"args", {{"device", "smoke-1"}, {"point", "stat"}}}});
  auto no_point = reply_to(platform, "r3");
  REQUIRE(no_point);
  CHECK((*no_point)["ok"] == false);
  CHECK((*no_point)["error"].get<std::string>().starts_with(
      R"(smoke-1 has no point "stat"; did you mean "state"?)"));

  send({{"id", "r4"}, {"command", "read"}, {"args", {{"device", "smoke-9"}}}});
  auto no_device = reply_to(platform, "r4");
  REQUIRE(no_device);
  CHECK((*no_device)["error"] ==
        R"(no device "smoke-9" on this gateway; did you mean "smoke-1"? its devices: smoke-1)");

  // The self-test: a test fire alarm of the gateway itself, on the alarm topic, ended by the
  // platform's acknowledgement.
  send({{"id", "t1"}, {"command", "self_test"}, {"args", {{"by", "commissioning tech 7"}}}});
  auto started = reply_to(platform, "t1");
  REQUIRE(started);
  REQUIRE((*started)["ok"] == true);
  const auto alarm_id = (*started)["events"][0]["id"].get<std::string>();
  auto alarm = platform.wait_for(
      [&](auto& m) {
        return m.topic.ends_with("/alarm") &&
               json::parse(m.payload, nullptr, false).value("id", "") == alarm_id;
      },
      10s);
  REQUIRE(alarm);
  auto a = json::parse(alarm->payload);
  CHECK(a["type"] == "fire_alarm");
  CHECK(a["test"] == true);
  CHECK(a["category"] == "test");
  CHECK(a["rule"] == "self_test");
  send({{"id", "t2"}, {"command", "self_test"}, {"args", {{"by", "tech 8"}}}});
  auto again = reply_to(platform, "t2");
  REQUIRE(again);
  CHECK((*again)["error"].get<std::string>().find("still waiting for the platform's acknowledgement") !=
        std::string::npos);
  send({{"id", "t3"},
        {"command", "ack"},
        {"args", {{"alarm_id", alarm_id}, {"verdict", "test"}, {"by", "operator 12"}}}});
  auto acked = reply_to(platform, "t3");
  REQUIRE(acked);
  CHECK((*acked)["ok"] == true);
  REQUIRE((*acked)["events"].size() == 2);
  CHECK((*acked)["events"][0]["type"] == "alarm_acknowledged");
  CHECK((*acked)["events"][1]["type"] == "fire_recovery");
  auto done = platform.wait_for(
      [&](auto& m) {
        auto j = json::parse(m.payload, nullptr, false);
        return j.is_object() && j.value("type", "") == "fire_recovery" && j.value("alarm_id", "") == alarm_id;
      },
      10s);
  REQUIRE(done);
  CHECK(json::parse(done->payload)["test"] == true);
}

TEST_CASE(
    "uplink: the broker restarted mid-stream - alarms go before the telemetry backlog - no poll is lost") {
  temp_dir dir;
  const auto port = free_port();
  auto mosquitto = std::make_unique<broker>(dir, port, true);
  // The platform: a persistent QoS 1 session, so what the broker queues for it across the restart
  // arrives in the order it was published.
  child platform(
      {"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(port), "-t", "firegate/+/+/alarm",
       "-t", "firegate/+/+/telemetry", "-q", "1", "-c", "-i", "platform-restart", "-v"},
      dir / "platform.log");
  simulator sim(dir, 4);
  auto text = sd1_site_config(dir / "fg.db", port, sim.port(), 4, false);
  // A slow drain (ten telemetry messages a second while a flush every 200 ms makes five), so that
  // the backlog is still going out when the second alarm is raised.
  text.insert(text.find("keepalive_s = 5\n"), "telemetry_rate = 10\n");
  // Every poll reported (the SD-1's own strategy sends changes): the backlog is then complete.
  const std::string latch = "latch = false\n";
  for (auto at = text.find(latch); at != std::string::npos; at = text.find(latch, at + 1))
    text.insert(at + latch.size(), "[devices.report.\"*\"]\non = \"poll\"\n");
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  INFO(daemon.log_text());
  const auto received = [&] {
    std::vector<std::pair<std::string, json>> out;  // "alarm" or "telemetry", payload
    std::istringstream in(read_text(dir / "platform.log"));
    for (std::string line; std::getline(in, line);) {
      const auto space = line.find(' ');
      if (space == std::string::npos) continue;
      auto j = json::parse(line.substr(space + 1), nullptr, false);
      if (!j.is_object()) continue;
      out.emplace_back(line.substr(0, space).ends_with("/alarm") ? "alarm" : "telemetry", std::move(j));
    }
    return out;
  };
  const auto fire_of = [](const std::string& device) {
    return [device](const std::pair<std::string, json>& m) {
      return m.first == "alarm" && m.second.value("type", "") == "fire_alarm" &&
             m.second["device"]["name"] == device;
    };
  };
  REQUIRE(wait_until([&] { return received().size() >= 3; }, 10s));

  const auto cut = std::chrono::system_clock::now();
  mosquitto->stop();
  sim.send("2 state 1");            // raised while the broker is down
  std::this_thread::sleep_for(3s);  // telemetry piles up in the outbox
  mosquitto = std::make_unique<broker>(dir, port, true);
  const auto back = std::chrono::system_clock::now();
  REQUIRE(wait_until([&] { return std::ranges::any_of(received(), fire_of("smoke-2")); }, 20s));
  sim.send("3 state 1");  // raised while the backlog drains
  REQUIRE(wait_until([&] { return std::ranges::any_of(received(), fire_of("smoke-3")); }, 10s));

  // Every poll of smoke-1 arrives in the end, the outage included: each one the gateway stored
  // (read from its database by Python's sqlite3, not by firegate) up to the newest the platform
  // has is among those the platform received. (Not the gaps between polls: a loaded sanitizer run
  // can delay a poll by over a second without losing one.)
  const auto stored_polls = [&] {
    const auto script = dir / "polls.py";
    std::ofstream(script) << fmt::format(
        "import sqlite3\nc = sqlite3.connect('file:{}?mode=ro', uri=True)\n"
        "for (t,) in c.execute(\"SELECT DISTINCT p.time_ms FROM polls p JOIN layouts l ON l.id = p.layout "
        "JOIN series s ON s.id = CAST(l.series AS INTEGER) WHERE s.device = 'smoke-1' ORDER BY 1\"): "
        "print(t)\n",
        (dir / "fg.db").string());
    child py({"/usr/bin/python3", script.string()}, dir / "polls.out");
    std::vector<std::int64_t> out;
    if (py.stop(0, 10s) != 0) return out;
    std::istringstream in(read_text(dir / "polls.out"));
    for (std::int64_t t = 0; in >> t;) out.push_back(t);
    return out;
  };
  std::set<std::int64_t> polls;
  std::size_t missing = 0, stored = 0;
  const bool complete = wait_until(
      [&] {
        polls.clear();
        for (const auto& [kind, j] : received()) {
          if (kind != "telemetry") continue;
          for (const auto& poll : j["polls"]) {
            if (poll["device"] != "smoke-1") continue;
            const auto t = parse_iso8601(poll["time"].get<std::string>());
            if (t)
              polls.insert(
                  std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count());
          }
        }
        if (polls.size() < 20) return false;
        const auto back_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(back.time_since_epoch()).count();
        if (*polls.rbegin() < back_ms + 2000) return false;
        missing = stored = 0;
        for (const auto t : stored_polls()) {
          if (t > *polls.rbegin()) break;
          ++stored;
          missing += polls.contains(t) ? 0 : 1;
        }
        return stored >= 20 && missing == 0;
      },
      30s);
  INFO("polls received " << polls.size() << ", stored up to the newest received " << stored << ", missing "
                         << missing << "; broker back after "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(back - cut).count()
                         << " ms");
  CHECK(complete);
  CHECK(daemon.stop(SIGTERM) == 0);

  // Neither alarm waited behind telemetry read during the outage: the first went before any of it,
  // the second before the last of it.
  const auto messages = received();
  const auto outage_polls = [&](const json& j) {
    std::size_t n = 0;
    for (const auto& poll : j["polls"]) {
      const auto t = *parse_iso8601(poll["time"].get<std::string>());
      n += t > cut + 200ms && t < back ? 1 : 0;
    }
    return n;
  };
  const auto first = std::ranges::find_if(messages, fire_of("smoke-2"));
  const auto second = std::ranges::find_if(messages, fire_of("smoke-3"));
  std::size_t before_first = 0, after_second = 0;
  for (auto it = messages.begin(); it != first; ++it)
    before_first += it->first == "telemetry" ? outage_polls(it->second) : 0;
  for (auto it = second; it != messages.end(); ++it)
    after_second += it->first == "telemetry" ? outage_polls(it->second) : 0;
  CHECK(before_first == 0);
  CHECK(after_second > 0);
}

TEST_CASE(
    "firegate-center over TLS: prints the gateway online and its alarm for the operator - acknowledges it - "
    "runs the self-test to the end") {
  tls_rig rig(false);
  auto& platform = rig.platform;
  auto& sim = rig.sim;
  auto gateway = rig.gateway(rig.ca());
  auto& daemon = *gateway;
  INFO(daemon.log_text());
  const std::vector<std::string> tls{"--port", std::to_string(rig.mosquitto.tls_port()), "--cafile",
                                     rig.pki.ca.string()};
  auto args = std::vector<std::string>{firegate_center_path(), "--auto-ack", "0.2"};
  args.insert(args.end(), tls.begin(), tls.end());
  child center(args, rig.dir / "center.log");
  REQUIRE(status_of(platform, "online", "connected"));
  REQUIRE(wait_until([&] { return center.log_text().find("GATEWAY ONLINE") != std::string::npos; }, 10s));

  sim.send("1 state 1");
  auto acked = platform.wait_for(
      [](auto& m) {
        return json::parse(m.payload, nullptr, false).value("type", "") == "alarm_acknowledged";
      },
      10s);
  INFO(center.log_text());
  REQUIRE(acked);
  CHECK(json::parse(acked->payload)["actor"] == "firegate-center operator");
  // The reply to its acknowledgement is printed as the receiver gets to it.
  wait_until([&] { return center.log_text().find("  reply    to center-") != std::string::npos; }, 10s);
  const auto shown = center.log_text();
  INFO(shown);
  CHECK(shown.find("FIRE ALARM") != std::string::npos);
  CHECK(shown.find("  place    Test Hostel") != std::string::npos);
  CHECK(shown.find("  reply    to center-") != std::string::npos);

  // Commissioning: the self-test, answered and acknowledged by the reference receiver.
  auto self_args = std::vector<std::string>{firegate_center_path(), "--self-test", "site-test/gw-test"};
  self_args.insert(self_args.end(), tls.begin(), tls.end());
  child self_test(self_args, rig.dir / "self-test.log");
  REQUIRE(wait_until([&] { return !self_test.running(); }, 20s));
  INFO(self_test.log_text());
  CHECK(self_test.stop(SIGTERM) == 0);
  CHECK(self_test.log_text().find("self-test passed") != std::string::npos);
}

TEST_CASE("uplink: a broker that takes users - refused with a wrong password - accepted with the right one") {
  temp_dir dir;
  broker mosquitto(dir, "gw-test", "s3cret-pass");
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 1);
  const auto run = [&](const std::string& password, const std::string& name) {
    auto text = sd1_site_config(dir / "fg.db", mosquitto.tls_port(), sim.port(), 1);
    text.insert(text.find("keepalive_s = 5\n"),
                fmt::format("username = \"gw-test\"\npassword = \"{}\"\n", password));
    std::ofstream(dir / (name + ".toml")) << text;
    return std::make_unique<child>(
        std::vector<std::string>{firegated_path(), "-c", (dir / (name + ".toml")).string()},
        dir / (name + ".log"));
  };
  auto wrong = run("guess", "wrong");
  const bool refused =
      wait_until([&] { return wrong->log_text().find("uplink connect failed") != std::string::npos; }, 10s);
  const auto log = wrong->log_text();
  INFO(log);
  CHECK(refused);
  CHECK(log.find("guess") == std::string::npos);  // a password is never logged
  CHECK_FALSE(published_anything(platform));
  wrong->stop(SIGTERM);

  auto right = run("s3cret-pass", "right");
  INFO(right->log_text());
  REQUIRE(status_of(platform, "online", "connected"));
  CHECK(right->log_text().find("s3cret-pass") == std::string::npos);
}
