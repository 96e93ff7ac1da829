// The GB/T 26875.3 uplink end to end: firegate-sim as the detectors, firegated as the UITD and the
// reference centre (firegate-gb26875-center --json) as the town's monitoring centre, each its own
// process on real sockets. What the centre receives is read from its JSON lines; what the centre
// asks is typed on its standard input, as an operator would.

#include "gb_centre.hpp"
#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

/// A site with only the GB/T 26875.3 uplink (gb_centre.hpp's gb_site_tail).
std::string gb_site(const temp_dir& dir, std::uint16_t centre_port, std::uint16_t modbus_port,
                    const std::string& uplink_keys = "") {
  return site_base(dir / "fg.db") + gb_site_tail(centre_port, modbus_port, uplink_keys);
}

json gb_status(const temp_dir& dir) {
  auto j = ctl(dir, {"--json", "status"}).doc();
  return j.is_object() && j.contains("gb26875") ? j["gb26875"] : json::object();
}

}  // namespace

TEST_CASE(
    "gb26875 uplink: alarms reach the centre as component status and the centre's reads and commands are "
    "answered") {
  temp_dir dir;
  gb_centre centre(dir);
  simulator sim(dir, {"--devices", "SD-1:1", "--devices", "EFD-4T:2"});
  std::ofstream(dir / "fg.toml") << gb_site(dir, centre.port(), sim.port(), "analog_interval_s = 1");
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");

  // The UITD connects and says it is there with a heartbeat (empty send data), confirmed.
  REQUIRE(centre.wait_frame([](const json& f) { return f.value("heartbeat", false); }));
  const auto first = centre.frames().front();
  CHECK(first.value("source", 0) == 889);
  CHECK(first.value("destination", 0) == 89912);
  CHECK(first.value("answer", "") == "confirm");
  // The technician sees the uplink's settings and the devices' addresses (and no MQTT uplink).
  const auto settings = ctl(dir, {"config", "show"}).out;
  CHECK(settings.find("[uplink.gb26875]\n") != std::string::npos);
  CHECK(settings.find("uitd_address = 889") != std::string::npos);
  CHECK(settings.find("gb26875_address = 101") != std::string::npos);
  CHECK(settings.find("[uplink.mqtt]") == std::string::npos);

  // Analog values: the residual current in firegate's user-defined type 128 (1 mA), the cable
  // temperatures as temperature (0.1 °C) of component type 18; no setting is sent.
  // (The simulator lets values wander a little.)
  sim.send("2 residual_current 150\n");
  auto analog = centre.wait_frame([](const json& f) {
    if (!f.contains("data") || f["data"].value("type", 0) != 3) return false;
    for (const auto& o : f["data"]["objects"]) {
      if (o.value("analog type", 0) == 128 && std::abs(o.value("analog value", 0) - 150) <= 20) return true;
    }
    return false;
  });
  REQUIRE(analog);
  // In every frame so far: the electrical-fire detector's objects at its address, residual current
  // as component 17, temperatures as 18, and at most the four cables' temperatures, never the four
  // temperature settings (a full poll reads both).
  std::size_t most_temperatures = 0;
  for (const auto& f : centre.frames(3)) {
    std::size_t temperatures = 0;
    for (const auto& o : f["data"]["objects"]) {
      if (o.value("component address", 0) != 102) continue;
      if (o.value("analog type", 0) == 3) {
        CHECK(o.value("component type", 0) == 18);
        ++temperatures;
      }
      if (o.value("analog type", 0) == 128) CHECK(o.value("component type", 0) == 17);
    }
    CHECK(temperatures <= 4);
    most_temperatures = std::max(most_temperatures, temperatures);
  }
  CHECK(most_temperatures == 4);

  // A fire from the smoke detector: component status with the fire bit, its location in GB 18030.
  sim.send("1 state 1\n");
  auto fire = centre.wait_frame(status_of(101, 0x0003));
  REQUIRE(fire);
  const auto& object = (*fire)["data"]["objects"][0];
  CHECK(object.value("component type", 0) == 42);
  CHECK(object.value("system type", 0) == 1);
  CHECK(object.value("description", "") == "二楼 201 房");
  CHECK(fire->value("answer", "") == "confirm");
  // Leakage over its setting is a fire alarm of the residual-current detector (component 17).
  sim.send("2 residual_current 600\n");
  auto leak = centre.wait_frame(status_of(102, 0x0003));
  REQUIRE(leak);
  CHECK((*leak)["data"]["objects"][0].value("component type", 0) == 17);
  CHECK((*leak)["data"]["objects"][0].value("description", "") == "厨房配电箱");

  // The centre reads: component and facility status, the UITD's status, analog values, version.
  centre.send("query 62 1 1 101");
  CHECK(centre.wait_frame(status_of(101, 0x0003, "response")));
  centre.send("query 61 1 1");
  CHECK(centre.wait_frame([](const json& f) {
    return f.value("command", "") == "response" && f.contains("data") && f["data"].value("type", 0) == 1 &&
           f["data"]["objects"][0].value("status", 0) == 0x0003;
  }));
  centre.send("query 81");
  CHECK(centre.wait_frame([](const json& f) {
    return f.value("command", "") == "response" && f.contains("data") && f["data"].value("type", 0) == 21 &&
           f["data"]["objects"][0].value("uitd status", 0) == 0x03;
  }));
  // (A reading of bad quality, from a poll that timed out on a loaded machine, is not sent: the
  // read is asked again then.)
  const auto leakage_answer = [](const json& f) {
    if (f.value("command", "") != "response" || !f.contains("data") || f["data"].value("type", 0) != 3)
      return false;
    for (const auto& o : f["data"]["objects"]) {
      if (o.value("analog type", 0) == 128 && std::abs(o.value("analog value", 0) - 600) <= 60) return true;
    }
    return false;
  };
  std::optional<json> r63;
  for (int attempt = 0; attempt < 3 && !r63; ++attempt) {
    centre.send("query 63 1 1 102");
    r63 = centre.wait_frame(leakage_answer, 4s);
  }
  if (!r63) {
    std::string answers;
    for (const auto& f : centre.lines()) {
      if (f.value("command", "") == "response" || f.value("command", "") == "deny")
        answers += f.dump() + "\n";
    }
    std::istringstream log(daemon.log_text());
    for (std::string line; std::getline(log, line);) {
      if (line.find("gb26875 uplink request") != std::string::npos) answers += line + "\n";
    }
    FAIL_CHECK("no analog values near 600 mA in an answer to the read of component 102; the answers:\n"
               << answers);
  }
  centre.send("query 85");
  CHECK(centre.wait_frame([](const json& f) {
    return f.value("command", "") == "response" && f.contains("data") && f["data"].value("type", 0) == 25;
  }));
  // Several components in one read (clause 8.3.2.2): each one the gateway has is answered, in one
  // response of type 2 with an object each; one it does not have is left out, and said in the log.
  centre.send("query 62 1 1 101 1 1 999 1 1 102");
  const auto both = centre.wait_frame([](const json& f) {
    return f.value("command", "") == "response" && f.contains("data") && f["data"].value("type", 0) == 2 &&
           f["data"]["objects"].size() == 2;
  });
  REQUIRE(both);
  CHECK((*both)["data"]["objects"][0].value("component address", 0) == 101);
  CHECK((*both)["data"]["objects"][1].value("component address", 0) == 102);
  CHECK(wait_until(
      [&] {
        return daemon.log_text().find("left_out=\"system 1/1 component 999\" answered=2") !=
               std::string::npos;
      },
      5s));
  // Two systems, one of them this gateway's; configurations of both components, without time labels
  // (figure 24): the centre's codec reads them as the standard lays them out.
  centre.send("query 61 1 1 10 1");
  CHECK(centre.wait_frame([](const json& f) {
    return f.value("command", "") == "response" && f.contains("data") && f["data"].value("type", 0) == 1 &&
           f["data"]["objects"].size() == 1;
  }));
  centre.send("query 67 1 1 101 1 1 102");
  const auto configs = centre.wait_frame([](const json& f) {
    return f.value("command", "") == "response" && f.contains("data") && f["data"].value("type", 0) == 7;
  });
  REQUIRE(configs);
  CHECK((*configs)["data"]["objects"].size() == 2);
  CHECK_FALSE((*configs)["data"]["objects"][0].contains("time"));
  CHECK((*configs)["data"]["objects"][1].value("description", "") == "厨房配电箱");
  // The UITD's time (figure 30): the time is the object, no label after it.
  centre.send("query 88");
  const auto uitd_time = centre.wait_frame([](const json& f) {
    return f.value("command", "") == "response" && f.contains("data") && f["data"].value("type", 0) == 28;
  });
  REQUIRE(uitd_time);
  // (The layout itself is checked byte by byte in test_gb26875_figures.cpp: the centre reads with
  // firegate's own codec.)
  CHECK_FALSE(uitd_time->contains("data_error"));

  // A component the gateway does not have, and operation records it does not keep: denied.
  centre.send("query 62 1 1 999");
  CHECK(centre.wait_frame([](const json& f) { return f.value("command", "") == "deny"; }));

  // Clock synchronisation within the bound (300 s): confirmed, the UITD's time reported (type 28),
  // two minutes ahead as asked.
  centre.send("clock 120");
  auto reported = centre.wait_frame([](const json& f) {
    return f.contains("data") && f["data"].value("type", 0) == 28 && f.value("command", "") == "send data";
  });
  REQUIRE(reported);
  REQUIRE(wait_until([&] { return gb_status(dir).value("clock_offset_ms", 0) > 110000; }, 5s));
  CHECK(gb_status(dir).value("clock_offset_ms", 0) < 130000);
  // An hour ahead (a spoofed or broken centre): denied twice, the offset kept, one fault event.
  for (int i = 0; i < 2; ++i) {
    const auto now = centre.frames();
    const auto denies =
        std::count_if(now.begin(), now.end(), [](const json& f) { return f.value("command", "") == "deny"; });
    centre.send("clock 3600");
    REQUIRE(wait_until(
        [&] {
          const auto frames = centre.frames();
          return std::count_if(frames.begin(), frames.end(),
                               [](const json& f) { return f.value("command", "") == "deny"; }) > denies;
        },
        5s));
  }
  CHECK(gb_status(dir).value("clock_offset_ms", 0) < 130000);
  const auto refused_events = [&] {
    const auto h = ctl(dir, {"--json", "alarms", "--history", "--limit", "100"}).doc();
    std::vector<json> out;
    for (const auto& e : h.value("history", json::array())) {
      if (e.value("type", "") == "clock_sync_refused") out.push_back(e);
    }
    return out;
  };
  REQUIRE(wait_until([&] { return !refused_events().empty(); }, 5s));
  const auto refused = refused_events();
  CHECK(refused.size() == 1);
  CHECK(refused.front().value("category", "") == "fault");
  CHECK(refused.front().value("detail", "").find("clock_max_step_s") != std::string::npos);
  CHECK(daemon.log_text().find("clock synchronisation refused") != std::string::npos);

  // The inspection check: shown to the technician, answered by the duty person, sent as UITD
  // operation (type 24) with the inspection-reply bit and the operator's number.
  centre.send("inspect");
  REQUIRE(wait_until([&] { return gb_status(dir).contains("inspection"); }, 5s));
  auto shown = ctl(dir, {"status"});
  CHECK(shown.out.find("INSPECTION CHECK") != std::string::npos);
  auto answered = ctl(dir, {"gb26875", "answer", "--operator", "7"});
  CHECK(answered.exit == 0);
  auto reply = centre.wait_frame([](const json& f) {
    return f.contains("data") && f["data"].value("type", 0) == 24 &&
           f["data"]["objects"][0].value("operation", 0) == 32;
  });
  REQUIRE(reply);
  CHECK((*reply)["data"]["objects"][0].value("operator", 0) == 7);
  CHECK(ctl(dir, {"gb26875", "answer"}).exit != 0);  // nothing waiting now
  CHECK(gb_status(dir)["inspections"].value("answered", 0) == 1);

  // Garbage and a frame with a wrong checksum from the centre: the bad frame is denied, the link
  // stays, and the next alarm still goes up. Initialising the UITD is refused.
  const auto before = centre.frames().size();
  centre.send("garbage");
  CHECK(centre.wait_frame(
      [](const json& f) { return f.value("command", "") == "deny" && f.value("serial", 0) == 7; }));
  centre.send("init");
  REQUIRE(wait_until([&] { return centre.frames().size() >= before + 2; }, 5s));
  sim.send("1 state 0\n");
  CHECK(centre.wait_frame(status_of(101, 0x0001)));  // the fire ended: normal
  CHECK(daemon.running());
  CHECK(gb_status(dir).value("link", "") == "normal");
  CHECK(gb_status(dir).value("denied_by_us", 0) >= 3);
}

TEST_CASE(
    "gb26875 uplink: unconfirmed frames are sent again then kept through a link fault and a restart - "
    "denied ones once more then set aside") {
  temp_dir dir;
  gb_centre centre(dir);
  simulator sim(dir, {"--devices", "SD-1:1", "--devices", "EFD-4T:2"});
  std::ofstream(dir / "fg.toml") << gb_site(dir, centre.port(), sim.port(),
                                            "confirm_timeout_s = 1\nretries = 3\nanalog_interval_s = 0");
  auto daemon = std::make_unique<child>(
      std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(centre.wait_frame([](const json& f) { return f.value("answer", "") == "confirm"; }));

  // The centre confirms nothing: the fire goes four times (1 + 3 retries) under one serial, a
  // second apart, then the link counts as failed and is made again, and the fire goes first on it.
  centre.send("silent 4");
  sim.send("1 state 1\n");
  REQUIRE(centre.wait_frame(status_of(101, 0x0003)));
  REQUIRE(wait_until([&] { return centre.frames(2).size() >= 5; }, 15s));
  auto sends = centre.frames(2);
  // (This part failed once in CI under TSan, the fifth send on connection 4, and not since in
  // dozens of runs under load: if it fails again, both sides' logs say why.)
  INFO("centre's log:\n" << centre.log_text() << "\nfiregated's log:\n" << daemon->log_text());
  const auto serial = sends[0].value("serial", -1);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(sends[i].value("serial", -2) == serial);
    CHECK(sends[i].value("connection", 0) == 1);
    CHECK(sends[i].value("answer", "") == "none (silent)");
  }
  const auto gap =
      sends[3].value("received_ms", std::int64_t{0}) - sends[0].value("received_ms", std::int64_t{0});
  CHECK(gap >= 2800);
  CHECK(gap <= 6000);
  CHECK(sends[4].value("connection", 0) == 2);
  CHECK(sends[4].value("answer", "") == "confirm");
  CHECK(daemon->log_text().find("gb26875 uplink link fault") != std::string::npos);
  auto st = gb_status(dir);
  CHECK(st.value("link_faults", 0) == 1);
  CHECK(st.value("resent", 0) == 3);
  CHECK(st.value("connects", 0) == 2);

  // Denied once: sent once more and confirmed. Denied twice: set aside, and what follows goes.
  centre.send("deny 1");
  sim.send("1 state 0\n");
  REQUIRE(wait_until([&] { return centre.frames(2).size() >= 7; }, 10s));
  sends = centre.frames(2);
  CHECK(sends[5].value("answer", "") == "deny");
  CHECK(sends[6].value("answer", "") == "confirm");
  CHECK(sends[6].value("serial", -1) == sends[5].value("serial", -2));
  centre.send("deny 2");
  sim.send("2 residual_current 600\n");
  REQUIRE(wait_until([&] { return centre.frames(2).size() >= 9; }, 10s));
  sim.send("1 state 1\n");
  REQUIRE(wait_until([&] { return centre.frames(2).size() >= 10; }, 10s));
  sends = centre.frames(2);
  CHECK(sends[7].value("answer", "") == "deny");
  CHECK(sends[8].value("answer", "") == "deny");
  CHECK(sends[9].value("answer", "") == "confirm");
  CHECK(sends[9]["data"]["objects"][0].value("component address", 0) == 101);
  st = gb_status(dir);
  CHECK(st.value("set_aside", 0) == 1);
  CHECK(st.value("denied_by_centre", 0) == 3);
  CHECK(daemon->log_text().find("centre denied twice") != std::string::npos);

  // Kept through a restart: the centre goes silent, the fire's end is raised and stored, firegated
  // stops before any confirm; started again, it sends it (its own delivery bit in the store).
  centre.send("silent 1000");
  sim.send("1 state 0\n");
  REQUIRE(wait_until([&] { return centre.frames(2).size() >= 11; }, 10s));
  CHECK(daemon->stop(SIGTERM) == 0);
  centre.send("silent 0");
  daemon = std::make_unique<child>(
      std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg2.log");
  // (Connection 3: the first was closed by the link fault, the second by the stop.)
  CHECK(centre.wait_frame([](const json& f) {
    return f.value("connection", 0) == 3 && f.value("answer", "") == "confirm" && status_of(101, 0x0001)(f);
  }));
}

TEST_CASE(
    "gb26875 uplink: reads in a noisy stream are each answered within a second - no reconnect - a fire "
    "still goes at once") {
  temp_dir dir;
  gb_centre centre(dir);
  simulator sim(dir, {"--devices", "SD-1:1", "--devices", "EFD-4T:2"});
  std::ofstream(dir / "fg.toml") << gb_site(dir, centre.port(), sim.port(), "analog_interval_s = 0");
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(centre.wait_frame([](const json& f) { return f.value("answer", "") == "confirm"; }));

  // A read of the UITD's software version (85) behind a stray '@', behind a clock frame cut short,
  // behind 5,000 '@', a byte a write, and among garbage with start and end markers. The old reader
  // waited for 768 or 257 bytes that never came, and the link was declared faulty 40 s later.
  for (const std::string how : {"stray", "cut", "flood", "bytes", "mixed", "pause"}) {
    INFO(how);
    centre.send("noisy " + how + " 85");
    std::optional<json> sent;
    REQUIRE(wait_until(
        [&] {
          for (auto& l : centre.lines()) {
            if (l.value("event", "") == "sent" && l.value("noisy", "") == how) sent = l;
          }
          return sent.has_value();
        },
        5s));
    const auto serial = sent->value("serial", -1);
    const auto answer = centre.wait_frame(
        [&](const json& f) {
          return f.value("command", "") == "response" && f.value("serial", -2) == serial &&
                 f.contains("data") && f["data"].value("type", 0) == 25;
        },
        5s);
    REQUIRE(answer);
    // (pause: the read goes 2.5 s after the frame cut short, which is dropped after 2 s of silence.)
    const auto took = answer->value("received_ms", std::int64_t{0}) - sent->value("sent_ms", std::int64_t{0});
    CHECK(took <= (how == "pause" ? 3500 : 1000));
  }
  CHECK(daemon.log_text().find("gb26875 uplink dropped an incomplete frame") != std::string::npos);
  CHECK(daemon.log_text().find("bytes=20 silence_ms=2000") != std::string::npos);
  // A fire right after: sent and confirmed on the same connection.
  sim.send("1 state 1\n");
  const auto fire = centre.wait_frame(status_of(101, 0x0003), 5s);
  REQUIRE(fire);
  CHECK(fire->value("connection", 0) == 1);
  const auto st = gb_status(dir);
  CHECK(st.value("connects", 0) == 1);
  CHECK(st.value("link_faults", 0) == 0);
  // The bytes that were no frame are counted and logged; the flood's denies are limited.
  CHECK(st.value("skipped_bytes", 0) >= 5000);
  CHECK(st.value("denies_suppressed", 0) >= 4000);
  CHECK(st.value("denied_by_us", 0) <= 20);
  CHECK(daemon.log_text().find("gb26875 uplink skipped bytes") != std::string::npos);
  for (const auto& l : centre.lines()) CHECK(l.value("event", "") != "closed");
}
