// firegatectl end to end: the real binary against a running firegated (firegate-sim detectors, a
// real mosquitto, firegate-center as the control room), each command with --json parsed and
// checked, and the errors a technician meets: the daemon not running, a stale socket, a user not
// in the group (refused by the file's mode, and by the daemon's own check of the peer).

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

TEST_CASE("firegatectl: every command against a running firegated with --json parsed and checked") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 2);
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 2);
  // A secret that `config show` must never print.
  text.replace(text.find("keepalive_s = 5"), 15,
               "keepalive_s = 5\nusername = \"gw\"\npassword = \"s3cret-pw\"");
  // Idle connections are closed after 5 s here (120 s by default).
  text.replace(text.find("[control]\n"), 10, "[control]\nidle_timeout_s = 5\n");
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  child center({firegate_center_path(), "--port", std::to_string(mosquitto.port()), "--auto-ack", "0.2"},
               dir / "center.log");
  REQUIRE(platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));

  {  // status devices and device (one daemon for all: each start costs seconds)
    // Both detectors online and the uplink connected, as the technician sees it.
    json st;
    REQUIRE(wait_until(
        [&] {
          auto r = ctl(dir, {"--json", "status"});
          st = r.doc();
          return r.exit == 0 && st["devices"]["online"] == 2 && st["uplink"]["connected"] == true &&
                 !st["uplink"]["last_ack"].is_null();
        },
        10s));
    INFO(st.dump(2));
    CHECK(st["gateway"]["id"] == "gw-test");
    CHECK(st["site"]["name"] == "Test Hostel");
    CHECK(st["buses"][0]["name"] == "tcp-1");
    CHECK(st["buses"][0]["online"] == 2);
    CHECK(st["storage"]["state"] == "ok");
    CHECK(st["storage"]["used_bytes"].get<std::uint64_t>() > 0);
    CHECK(st["uplink"]["outbox"].contains("alarm"));
    CHECK(st["alarms"]["open"].empty());

    auto devices = ctl(dir, {"--json", "devices"});
    REQUIRE(devices.exit == 0);
    const auto list = devices.doc()["devices"];
    REQUIRE(list.size() == 2);
    const auto* d1 = find_by(list, "name", "smoke-1");
    REQUIRE(d1 != nullptr);
    CHECK((*d1)["model"] == "SD-1");
    CHECK((*d1)["online"] == true);
    CHECK((*d1)["polls"].get<int>() > 0);
    CHECK((*d1)["address"].get<std::string>().ends_with("unit 1"));

    auto one = ctl(dir, {"--json", "device", "smoke-2"});
    REQUIRE(one.exit == 0);
    const auto d = one.doc();
    const auto* state = find_by(d["values"], "point", "state");
    REQUIRE(state != nullptr);
    CHECK((*state)["value"] == 0.0);
    CHECK((*state)["label"] == "normal");
    CHECK((*state)["quality"] == "good");
    CHECK((*state)["age_s"].get<double>() < 5);
    CHECK(d["writable"] == json::array({"command"}));
    // What the platform is sent of each point: the SD-1's strategy (docs/profiles.md).
    CHECK((*state)["report"] == "change, at least every 3600 s");
    const auto* smoke = find_by(d["values"], "point", "smoke");
    REQUIRE(smoke != nullptr);
    CHECK((*smoke)["report"] == "change > 0.05, at most every 10 s, at least every 3600 s");
    auto shown = ctl(dir, {"device", "smoke-2"});
    CHECK(shown.out.find("SENT TO THE PLATFORM") != std::string::npos);
    CHECK(shown.out.find("change > 0.05, at most every 10 s, at least every 3600 s") != std::string::npos);

    // The table a person reads names the same things.
    auto table = ctl(dir, {"devices"});
    CHECK(table.exit == 0);
    CHECK(table.out.find("smoke-1") != std::string::npos);
    CHECK(table.out.find("SD-1") != std::string::npos);

    auto typo = ctl(dir, {"device", "smok-2"});
    CHECK(typo.exit == 1);
    CHECK(typo.out.find("did you mean \"smoke-2\"") != std::string::npos);
  }

  {  // tail alarms ack shield test-mode and history
    child tail({firegatectl_path(), "--socket", (dir / "control.sock").string(), "--json", "tail", "--device",
                "smoke-1"},
               dir / "tail.out");
    REQUIRE(wait_until([&] { return read_text(dir / "tail.out").find("\"reading\"") != std::string::npos; },
                       10s));
    sim.send("1 state 1");
    REQUIRE(
        wait_until([&] { return read_text(dir / "tail.out").find("fire_alarm") != std::string::npos; }, 10s));
    // Only smoke-1's readings and events: the filter holds.
    std::istringstream lines(read_text(dir / "tail.out"));
    std::size_t readings = 0;
    for (std::string line; std::getline(lines, line);) {
      auto j = json::parse(line, nullptr, false);
      REQUIRE(j.is_object());
      if (j.contains("reading")) {
        ++readings;
        CHECK(j["reading"]["device"] == "smoke-1");
      }
      if (j.contains("event")) CHECK(j["event"]["device"] == "smoke-1");
    }
    CHECK(readings > 0);
    CHECK(tail.stop(SIGINT) == 128 + SIGINT);

    // The fire alarm is open; the control room (firegate-center) acknowledges it within a second,
    // but the technician on site may too. Open alarms first:
    auto open = ctl(dir, {"--json", "alarms"});
    REQUIRE(open.exit == 0);
    const auto open_alarms = open.doc()["open"];
    const auto* fire = find_by(open_alarms, "type", "fire_alarm");
    REQUIRE(fire != nullptr);
    CHECK((*fire)["device"] == "smoke-1");
    CHECK((*fire)["location"] == "room 1");

    // Shield and unshield, with who did it from the kernel's credentials.
    auto shield = ctl(dir, {"--json", "shield", "smoke-2", "--minutes", "5", "--reason", "dust from works",
                            "--by", "tech 7"});
    REQUIRE(shield.exit == 0);
    const auto ev = shield.doc()["events"][0];
    CHECK(ev["type"] == "device_shielded");
    CHECK(ev["by"].get<std::string>().starts_with("tech 7 (firegatectl"));
    auto shielded = ctl(dir, {"--json", "alarms", "--device", "smoke-2"});
    REQUIRE(shielded.exit == 0);
    REQUIRE(shielded.doc()["open"].size() == 1);
    CHECK(shielded.doc()["open"][0]["type"] == "device_shielded");
    CHECK(shielded.doc()["open"][0]["detail"] == "dust from works");
    auto sent = platform.wait_for(
        [](auto& m) { return m.payload.find("\"type\":\"device_shielded\"") != std::string::npos; }, 10s);
    REQUIRE(sent);  // the platform is told, as for its own command
    const auto with_modes = ctl(dir, {"--json", "devices"}).doc()["devices"];
    REQUIRE(find_by(with_modes, "name", "smoke-2") != nullptr);
    CHECK(find_by(with_modes, "name", "smoke-2")->contains("shielded_until"));
    CHECK_FALSE(find_by(with_modes, "name", "smoke-1")->contains("shielded_until"));
    CHECK(ctl(dir, {"unshield", "smoke-2"}).exit == 0);
    CHECK(ctl(dir, {"--json", "alarms", "--device", "smoke-2"}).doc()["open"].empty());

    auto tm = ctl(dir, {"--json", "test-mode", "smoke-2", "on", "--minutes", "10"});
    REQUIRE(tm.exit == 0);
    CHECK(tm.doc()["events"][0]["type"] == "test_mode_started");
    CHECK(ctl(dir, {"test-mode", "smoke-2", "off"}).exit == 0);

    // Refusals: an unknown alarm, an unknown device (with the closest name).
    auto bad_ack = ctl(dir, {"ack", "0000dead", "real"});
    CHECK(bad_ack.exit == 1);
    CHECK(bad_ack.out.find("no alarm on this gateway has an id starting") != std::string::npos);
    auto bad_shield = ctl(dir, {"shield", "smoke-3", "--reason", "x"});
    CHECK(bad_shield.exit == 1);
    CHECK(bad_shield.out.find("did you mean") != std::string::npos);

    auto history = ctl(dir, {"--json", "alarms", "--history", "--limit", "100"});
    REQUIRE(history.exit == 0);
    const auto h = history.doc()["history"];
    for (const char* type :
         {"fire_alarm", "device_shielded", "device_unshielded", "test_mode_started", "test_mode_ended"}) {
      INFO(type);
      CHECK(find_by(h, "type", type) != nullptr);
    }
    // Newest first.
    REQUIRE(h.size() >= 2);
    CHECK(h[0]["seq"].get<std::uint64_t>() > h[1]["seq"].get<std::uint64_t>());
  }

  {  // test-alarm reports the platform's acknowledgement
    auto r = ctl(dir, {"--json", "test-alarm", "--wait", "20"});
    INFO(r.out);
    REQUIRE(r.exit == 0);
    // The last line is the result; the progress line before it names the same alarm.
    const auto last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
    const auto result = json::parse(last);
    CHECK(result["acknowledged_by"] == "firegate-center operator");
    CHECK(result["verdict"] == "test");
    CHECK(result["seconds"].get<double>() < 20);
    CHECK(r.out.find("\"raised\"") != std::string::npos);
    // Ended: the self-test is no longer open.
    const auto still_open = ctl(dir, {"--json", "alarms"}).doc()["open"];
    CHECK(find_by(still_open, "id", result["alarm_id"].get<std::string>()) == nullptr);
    CHECK(find_by(still_open, "rule", "self_test") == nullptr);
  }

  {  // config show redacts secrets and export writes CSV
    auto shown = ctl(dir, {"--json", "config", "show"});
    REQUIRE(shown.exit == 0);
    CHECK(shown.out.find("s3cret-pw") == std::string::npos);
    const auto cfg = shown.doc();
    CHECK(cfg["uplink"]["mqtt"]["password"] == "(redacted)");
    CHECK(cfg["uplink"]["mqtt"]["username"] == "gw");
    CHECK(cfg["buses"][0]["settings"]["timeout_ms"] == 500);
    CHECK(cfg["devices"][1]["settings"]["unit_id"] == 2);
    CHECK(cfg["storage"]["flush_interval_ms"] == 200);
    auto as_text = ctl(dir, {"config", "show"});
    CHECK(as_text.out.find("s3cret-pw") == std::string::npos);
    CHECK(as_text.out.find("[uplink.mqtt]") != std::string::npos);

    // Readings of the last minute of smoke-1, as CSV.
    REQUIRE(wait_until(
        [&] {
          const auto out = ctl(dir, {"export", "--from", "1m", "-d", "smoke-1"}).out;
          return std::count(out.begin(), out.end(), '\n') > 8;
        },
        10s));
    auto exported = ctl(dir, {"export", "--from", "1m", "-d", "smoke-1", "-o", (dir / "x.csv").string()});
    REQUIRE(exported.exit == 0);
    std::istringstream csv(read_text(dir / "x.csv"));
    std::string line;
    REQUIRE(std::getline(csv, line));
    CHECK(line == "time,device,point,value,unit,quality");
    std::size_t rows = 0;
    while (std::getline(csv, line)) {
      ++rows;
      CHECK(line.find(",smoke-1,") != std::string::npos);
      CHECK(line.ends_with(",good"));
    }
    CHECK(rows > 8);
    CHECK(exported.out.find(fmt::format("{} readings written", rows)) != std::string::npos);
    // Arguments checked before anything is written: no CSV header, no file, the argument named.
    auto reversed = ctl(dir, {"export", "--from", "now", "--to", "1h"});
    CHECK(reversed.exit == 2);
    CHECK(reversed.out.find("is not before --to") != std::string::npos);
    CHECK(reversed.out.find("time,device") == std::string::npos);
    auto unreadable = ctl(dir, {"export", "--from", "yesterday"});
    CHECK(unreadable.exit == 2);
    CHECK(unreadable.out.find("--from \"yesterday\" is not a time") != std::string::npos);
    CHECK(unreadable.out.find("90s, 30m, 12h, 7d") != std::string::npos);
    auto no_device = ctl(dir, {"export", "--from", "1m", "-d", "smoke-9", "-o", (dir / "none.csv").string()});
    CHECK(no_device.exit == 1);
    CHECK(no_device.out.find("did you mean") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "none.csv"));
    auto to_stdout = ctl(dir, {"export", "--from", "1m", "-d", "smoke-9"});
    CHECK(to_stdout.exit == 1);
    CHECK(to_stdout.out.find("time,device") == std::string::npos);
    CHECK(ctl(dir, {"config", "check", (dir / "fg.toml").string()}).exit == 0);
  }

  {  // raw registers and a scan, through the daemon's bus
    auto rd = ctl(dir, {"--json", "read", "--bus", "tcp-1", "--unit", "1", "--table", "input", "--address",
                        "0", "--count", "4"});
    REQUIRE(rd.exit == 0);
    const auto regs = rd.doc();
    REQUIRE(regs["values"].size() == 4);
    CHECK(regs["values"][0] == 1);               // smoke-1 is in fire since the tail above
    CHECK(regs["values"][3].get<int>() > 2000);  // supply voltage, 0.01 V
    auto wr = ctl(dir, {"--json", "write", "-b", "tcp-1", "-u", "2", "-a", "0x10", "2"});
    INFO(wr.out);
    REQUIRE(wr.exit == 0);
    CHECK(wr.doc()["written"] == true);
    // A raw write is an event to the platform, naming the device at that unit and who did it.
    auto written = platform.wait_for([](auto& m) { return is_event(m, "register_written"); }, 10s);
    REQUIRE(written);
    const auto w = json::parse(written->payload);
    CHECK(w["device"]["name"] == "smoke-2");
    CHECK(w["category"] == "operation");
    CHECK(w["actor"].get<std::string>().find("(firegatectl") != std::string::npos);
    CHECK(w["detail"].get<std::string>().find("tcp-1 unit 2 holding 16 = 2") != std::string::npos);
    auto exception = ctl(dir, {"read", "-b", "tcp-1", "-u", "1", "-a", "0x200"});
    CHECK(exception.exit == 1);
    CHECK(exception.out.find("illegal data address") != std::string::npos);
    auto bad_bus = ctl(dir, {"read", "-b", "tcp-2", "-u", "1", "-a", "0"});
    CHECK(bad_bus.exit == 1);
    CHECK(bad_bus.out.find("did you mean \"tcp-1\"") != std::string::npos);
    // A write to a read-only table: refused by firegatectl, and by the daemon (asked directly below)
    // before it is logged as a write. A value the device does not take: exception 3, with its hint.
    auto readonly = ctl(dir, {"write", "-b", "tcp-1", "-u", "1", "-t", "input", "-a", "0", "1"});
    CHECK(readonly.exit == 2);
    CHECK(readonly.out.find("input registers are read-only") != std::string::npos);
    auto out_of_range = ctl(dir, {"write", "-b", "tcp-1", "-u", "2", "-a", "0x10", "9"});
    CHECK(out_of_range.exit == 1);
    CHECK(out_of_range.out.find("exception 3: illegal data value (the device refused the value") !=
          std::string::npos);

    auto scan = ctl(dir, {"--json", "scan", "--bus", "tcp-1", "--from", "1", "--to", "3"});
    INFO(scan.out);
    REQUIRE(scan.exit == 0);
    std::istringstream lines(scan.out);
    std::map<int, json> units;
    for (std::string line; std::getline(lines, line);) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("unit")) units[j["unit"].get<int>()] = j;
    }
    REQUIRE(units.size() == 3);
    CHECK(units[1]["profiles"] == json::array({"SD-1"}));
    CHECK(units[1]["configured"] == "smoke-1");
    CHECK(units[2]["answered"] == true);
    CHECK(units[3]["answered"] == false);
    // The daemon polls this line: opening it directly is refused.
    auto direct =
        ctl(dir, {"read", "--direct", fmt::format("127.0.0.1:{}", sim.port()), "-u", "1", "-a", "0"});
    CHECK(direct.exit == 1);
    CHECK(direct.out.find("firegated is running") != std::string::npos);
    CHECK(direct.out.find("--bus NAME") != std::string::npos);
    // --force opens it anyway (for a line the daemon does not poll; this one it does, so one read).
    auto forced = ctl(dir, {"read", "--direct", fmt::format("127.0.0.1:{}", sim.port()), "--force", "-u", "1",
                            "-t", "input", "-a", "0"});
    CHECK(forced.exit == 0);
  }

  {  // bash completion asks the running daemon for names
    const auto script = fmt::format(
        "source {}/tools/firegatectl/firegatectl.bash; COMP_WORDS=(firegatectl device smoke-); COMP_CWORD=2; "
        "_firegatectl; echo \"${{COMPREPLY[*]}}\"",
        source_dir());
    child bash({"/bin/bash", "-c", script}, dir / "completion.out", false,
               {"PATH=" + std::filesystem::path(firegatectl_path()).parent_path().string() + ":/usr/bin:/bin",
                "FIREGATE_SOCKET=" + (dir / "control.sock").string()});
    CHECK(bash.stop(0, 10s) == 0);
    CHECK(read_text(dir / "completion.out") == "smoke-1 smoke-2\n");
  }

  {  // a request the daemon does not know and one too long
    // Spoken to directly, as a script would.
    auto send = [&](const std::string& request) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strcpy(addr.sun_path, (dir / "control.sock").c_str());
      REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      std::size_t off = 0;
      while (off < request.size()) {
        const auto n = ::write(fd, request.data() + off, request.size() - off);
        if (n <= 0) break;  // the daemon may close before reading it all
        off += static_cast<std::size_t>(n);
      }
      std::string answer;
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        answer.append(buf, static_cast<std::size_t>(n));
        if (answer.find('\n') != std::string::npos) break;
      }
      ::close(fd);
      return json::parse(answer.substr(0, answer.find('\n')), nullptr, false);
    };
    auto unknown = send(R"({"id":5,"command":"stauts"})"
                        "\n");
    CHECK(unknown["ok"] == false);
    CHECK(unknown["id"] == 5);
    CHECK(unknown["code"] == "unknown_command");
    CHECK(unknown["error"].get<std::string>().find("did you mean \"status\"") != std::string::npos);
    // A write to input registers, asked without firegatectl's own check: refused, never logged as
    // a write.
    auto input_write = send(
        R"({"id":6,"command":"write","args":{"bus":"tcp-1","unit":1,"table":"input","address":0,"values":[1]}})"
        "\n");
    CHECK(input_write["code"] == "bad_request");
    CHECK(input_write["error"].get<std::string>().find("input registers are read-only") != std::string::npos);
    CHECK(daemon.log_text().find("control raw write bus=tcp-1 unit=1 table=input") == std::string::npos);
    auto huge = send(std::string(70000, 'x') + "\n");
    CHECK(huge["code"] == "bad_request");
    CHECK(huge["error"].get<std::string>().find("65536") != std::string::npos);
    CHECK(send("not json\n")["code"] == "bad_request");
    const auto wrong_type = send(R"({"id":6,"command":"alarms","args":{"history":"yes"}})"
                                 "\n");
    CHECK(wrong_type["code"] == "bad_request");
    CHECK(wrong_type["error"].get<std::string>().find("wrong type") != std::string::npos);
    CHECK(send(R"({"id":7,"command":"device","args":{"name":42}})"
               "\n")["code"] == "unknown_device");
    // Numbers out of range are refused as they are, never converted first (1e300 once became
    // -2147483648, and 4294967297 would be unit 1).
    const auto huge_limit = send(R"({"id":8,"command":"alarms","args":{"history":true,"limit":1e300}})"
                                 "\n");
    CHECK(huge_limit["code"] == "bad_request");
    CHECK(huge_limit["error"].get<std::string>().find("\"limit\" must be a whole number 1–10000") !=
          std::string::npos);
    const auto wrapped_unit =
        send(R"({"id":9,"command":"read","args":{"bus":"tcp-1","unit":4294967297,"address":0}})"
             "\n");
    CHECK(wrapped_unit["code"] == "bad_request");
    CHECK(wrapped_unit["error"].get<std::string>().find("\"unit\"") != std::string::npos);
    CHECK(send(R"({"id":10,"command":"read","args":{"bus":"tcp-1","unit":1,"address":0.5}})"
               "\n")["code"] == "bad_request");
    // The daemon is none the worse.
    CHECK(ctl(dir, {"status"}).exit == 0);
  }

  {  // tails cannot take every connection, and an idle connection is closed with a reason
    const auto open_with = [&](const std::string& request) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strcpy(addr.sun_path, (dir / "control.sock").c_str());
      REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      if (!request.empty())
        REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
      return fd;
    };
    // The first line the daemon sends on `fd` within `timeout` (empty at end of stream or none).
    const auto first_line = [](int fd, std::chrono::milliseconds timeout) {
      std::string got;
      const auto end = std::chrono::steady_clock::now() + timeout;
      while (got.find('\n') == std::string::npos && std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        const auto n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
      return json::parse(got.substr(0, got.find('\n')), nullptr, false);
    };
    std::vector<int> tails;
    for (int i = 0; i < 12; ++i) {
      tails.push_back(open_with(R"({"id":1,"command":"tail"})"
                                "\n"));
      const auto started = first_line(tails.back(), 5s);
      INFO(started.dump());
      REQUIRE(started["progress"]["stage"] == "tailing");
    }
    const int thirteenth = open_with(R"({"id":2,"command":"tail"})"
                                     "\n");
    const auto refused = first_line(thirteenth, 5s);
    CHECK(refused["code"] == "busy");
    CHECK(refused["error"].get<std::string>().find("kept for commands") != std::string::npos);
    // The slots kept for commands answer while twelve tails run.
    CHECK(ctl(dir, {"status"}).exit == 0);
    for (const int fd : tails) ::close(fd);
    // The thirteenth connection, now idle, is closed after idle_timeout_s with a timeout line.
    const auto idle = first_line(thirteenth, 15s);
    CHECK(idle["code"] == "timeout");
    char byte = 0;
    CHECK(::read(thirteenth, &byte, 1) == 0);  // then end of stream
    ::close(thirteenth);
    CHECK(daemon.log_text().find("control session closed idle") != std::string::npos);

    // A client gone before its answer (a read of a unit that never answers): the answer finds the
    // session closed, and no idle timer may hold the daemon's loop past a stop (found by
    // fuzz_control_session; a stop then took the idle timeout, here 5 s).
    const int gone = open_with(R"({"id":3,"command":"read","args":{"bus":"tcp-1","unit":9,"address":0}})"
                               "\n");
    ::close(gone);
    // The bus takes technicians' requests in turn: once this one is answered, so was the first.
    CHECK(ctl(dir, {"read", "-b", "tcp-1", "-u", "9", "-a", "0"}).exit == 1);
  }
  const auto stopping = std::chrono::steady_clock::now();
  CHECK(daemon.stop(SIGTERM) == 0);
  CHECK(std::chrono::steady_clock::now() - stopping < 4s);
  CHECK_FALSE(std::filesystem::exists(dir / "control.sock"));  // removed at the stop
}

TEST_CASE("firegatectl: the daemon not running - a stale socket - a user outside the group") {
  temp_dir dir;
  auto gone = ctl(dir, {"status"});
  CHECK(gone.exit == 3);
  CHECK(gone.out.find("firegated is not running: there is no control socket at") != std::string::npos);
  auto gone_json = ctl(dir, {"--json", "status"});
  CHECK(gone_json.exit == 3);
  CHECK(gone_json.doc()["code"] == "unreachable");

  {
    // A socket file nobody listens on: what a daemon killed with SIGKILL leaves.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, (dir / "control.sock").c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
  }
  auto stale = ctl(dir, {"status"});
  CHECK(stale.exit == 3);
  CHECK(stale.out.find("nothing answers on") != std::string::npos);

  if (::geteuid() != 0) {
    WARN("not root: the other-user checks need setpriv to become nobody, skipped");
    return;
  }
  // The daemon replaces the stale socket. Its group: one nobody is not in (root's).
  broker mosquitto(dir);
  simulator sim(dir, 1);
  auto text = sd1_site_config(dir / "fg.db", mosquitto.port(), sim.port(), 1);
  text.replace(text.find("[control]\n"), 10, "[control]\ngroup = \"root\"\n");
  std::ofstream(dir / "fg.toml") << text;
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  REQUIRE(wait_until([&] { return ctl(dir, {"status"}).exit == 0; }, 10s));
  struct stat st {};
  REQUIRE(::stat((dir / "control.sock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);

  const std::vector<std::string> as_nobody{"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                           "--clear-groups"};
  ::chmod(dir.path().c_str(), 0755);  // nobody may reach the socket's folder; the socket itself is 0660
  auto denied = ctl(dir, {"status"}, as_nobody);
  INFO(denied.out);
  CHECK(denied.exit == 4);
  CHECK(denied.out.find("permission denied on") != std::string::npos);
  CHECK(denied.out.find("sudo adduser $USER root") != std::string::npos);

  // Opened to everyone by mistake: the daemon's own check of the peer still refuses.
  ::chmod((dir / "control.sock").c_str(), 0666);
  auto refused = ctl(dir, {"--json", "status"}, as_nobody);
  INFO(refused.out);
  CHECK(refused.exit == 4);
  CHECK(refused.doc()["code"] == "permission");
  CHECK(refused.doc()["error"].get<std::string>().find("is not in the group root") != std::string::npos);
  CHECK(wait_until([&] { return daemon.log_text().find("control connection refused") != std::string::npos; },
                   5s));
  CHECK(daemon.stop(SIGTERM) == 0);
}
