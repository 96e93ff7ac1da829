// firegatectl on its own, with no firegated running: a direct read and scan of a line (TCP and
// RTU, against firegate-sim), the manual and the completion kept in step with --help, and the
// GB/T 26875.3 decoder on captured frames. With a daemon: test_ctl.cpp.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <map>
#include <sstream>

using namespace firegate;
using namespace firegate::test;
using json = nlohmann::json;

TEST_CASE("firegatectl: read and scan a line directly while firegated is stopped - TCP and RTU") {
  temp_dir dir;
  simulator sim(dir, std::vector<std::string>{"--devices", "EFD-4T:5", "GD-1:7"});
  const auto target = fmt::format("127.0.0.1:{}", sim.port());
  auto scan =
      ctl(dir, {"--json", "scan", "--direct", target, "--from", "4", "--to", "8", "--timeout-ms", "100"});
  INFO(scan.out);
  REQUIRE(scan.exit == 0);
  std::map<int, json> units;
  std::istringstream lines(scan.out);
  for (std::string line; std::getline(lines, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_object()) units[j["unit"].get<int>()] = j;
  }
  REQUIRE(units.size() == 5);
  CHECK(units[5]["profiles"] == json::array({"EFD-4T"}));
  CHECK(units[7]["profiles"] == json::array({"GD-1"}));
  CHECK(units[4]["answered"] == false);
  CHECK(units[6]["answered"] == false);
  // The leakage setting of the EFD-4T: 300 mA by default.
  auto setting = ctl(dir, {"--json", "read", "--direct", target, "-u", "5", "-a", "0x0100"});
  REQUIRE(setting.exit == 0);
  CHECK(setting.doc()["values"] == json::array({300}));
  auto nobody = ctl(dir, {"read", "--direct", "127.0.0.1:1", "-u", "5", "-a", "0"});
  CHECK(nobody.exit == 1);
  CHECK(nobody.out.find("check the address") != std::string::npos);

  // RTU on a virtual serial line.
  temp_dir serial_dir;  // a simulator of its own: its port file and log
  pty_pair line(serial_dir);
  simulator rtu(serial_dir, std::vector<std::string>{"--devices", "SD-1:3", "--serial", line.b()});
  auto rd = ctl(dir, {"--json", "read", "--direct", line.a(), "--baud", "9600", "-u", "3", "-t", "input",
                      "-a", "0", "-c", "4"});
  INFO(rd.out);
  REQUIRE(rd.exit == 0);
  CHECK(rd.doc()["values"].size() == 4);
  {
    // Another master holds the line (as a running firegated does, whatever its socket): refused,
    // unless --force.
    const int held = ::open(line.a().c_str(), O_RDWR | O_NOCTTY);
    REQUIRE(held >= 0);
    REQUIRE(::flock(held, LOCK_EX | LOCK_NB) == 0);
    auto refused = ctl(dir, {"read", "--direct", line.a(), "-u", "3", "-t", "input", "-a", "0"});
    CHECK(refused.exit == 1);
    CHECK(refused.out.find("held by another master") != std::string::npos);
    CHECK(refused.out.find("--force opens the line anyway") != std::string::npos);
    auto forced = ctl(dir, {"read", "--direct", line.a(), "--force", "-u", "3", "-t", "input", "-a", "0"});
    CHECK(forced.exit == 0);
    ::close(held);
  }
  auto found = ctl(dir, {"scan", "--direct", line.a(), "--from", "2", "--to", "3", "--timeout-ms", "100"});
  INFO(found.out);
  CHECK(found.exit == 0);
  CHECK(found.out.find("unit   3  looks like SD-1") != std::string::npos);
  CHECK(found.out.find("1 of 2 units answered") != std::string::npos);
}

TEST_CASE("firegatectl: the man page - the manual and the completion name every command --help lists") {
  temp_dir dir;
  auto help = ctl(dir, {"--help"});
  REQUIRE(help.exit == 0);
  const auto subcommands = help.out.substr(help.out.find("Subcommands:"));
  std::istringstream lines(subcommands);
  std::string line;
  std::getline(lines, line);
  const auto man = read_text(source_dir() + "/tools/firegatectl/firegatectl.1");
  const auto manual = read_text(source_dir() + "/docs/firegatectl.md");
  const auto script = read_text(source_dir() + "/tools/firegatectl/firegatectl.bash");
  const auto listed = script.find("local commands=\"");
  REQUIRE(listed != std::string::npos);
  const auto completion = " " + script.substr(listed + 16, script.find('"', listed + 16) - listed - 16) + " ";
  std::size_t commands = 0;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string name;
    if (!(words >> name)) continue;
    ++commands;
    INFO(name);
    std::string roff = name;
    for (std::size_t at = 0; (at = roff.find('-', at)) != std::string::npos; at += 2)
      roff.replace(at, 1, "\\-");
    CHECK((man.find(".B " + roff) != std::string::npos || man.find(".BI " + roff) != std::string::npos));
    CHECK(manual.find("| `" + name) != std::string::npos);
    CHECK(completion.find(" " + name + " ") != std::string::npos);
  }
  CHECK(commands == 17);
}

TEST_CASE("firegatectl: --help shows where an installed firegatectl looks, never the build's folders") {
  temp_dir dir;
  for (const char* sub : {"scan", "read", "write", "export", "tail", "config"}) {
    INFO(sub);
    const auto help = ctl(dir, {sub, "--help"});
    CHECK(help.exit == 0);
    CHECK(help.out.find(source_dir()) == std::string::npos);
    CHECK(help.out.find(std::filesystem::path(firegatectl_path()).parent_path().string()) ==
          std::string::npos);
  }
  CHECK(ctl(dir, {"scan", "--help"}).out.find("share/firegate/profiles") != std::string::npos);
}

TEST_CASE("firegatectl: gb26875 decode prints a captured frame field by field and names what is wrong") {
  temp_dir dir;
  // docs/gb26875.md, "Worked example": 65.3 °C from a temperature electrical-fire detector.
  const std::string example =
      "40 40 02 00 01 01 2D 1E 0C 01 06 19 79 03 00 00 00 00 38 5B 01 00 00 00 12 00 02 03 01 00 01 12 0A 00 "
      "02 00 03 8D 02 2D 1E 0C 01 06 19 CB 23 23";
  auto ok = ctl(dir, {"gb26875", "decode", example});
  INFO(ok.out);
  CHECK(ok.exit == 0);
  CHECK(ok.out.find("checksum 0xCB ok") != std::string::npos);
  CHECK(ok.out.find("serial       2") != std::string::npos);
  CHECK(ok.out.find("time         2025-06-01 12:30:45") != std::string::npos);
  CHECK(ok.out.find("command      2 (send data)") != std::string::npos);
  CHECK(ok.out.find("type 3 (component analog value), 1 object") != std::string::npos);
  CHECK(ok.out.find("component type = 18 (temperature electrical-fire detector)") != std::string::npos);
  CHECK(ok.out.find("analog value = 653") != std::string::npos);
  // One string without spaces, as captured by tcpdump -X and pasted.
  std::string packed;
  for (char c : example)
    if (c != ' ') packed += c;
  auto js = ctl(dir, {"--json", "gb26875", "decode", packed});
  CHECK(js.exit == 0);
  CHECK(js.doc().value("serial", 0) == 2);
  CHECK(js.doc().value("command_name", "") == "send data");
  // A published UITD system time (type 28), laid out as figure 30: the time is the object.
  auto time28 =
      ctl(dir, {"gb26875", "decode",
                "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 08 00 02 1C 01 02 "
                "3A 09 1A 09 0C 40 23 23"});
  INFO(time28.out);
  CHECK(time28.exit == 0);
  CHECK(time28.out.find("type 28 (UITD system time), 1 object") != std::string::npos);
  CHECK(time28.out.find("time = 2012-09-26 09:58:02") != std::string::npos);
  // What is wrong, exactly.
  auto bad_sum = example;
  bad_sum.replace(bad_sum.find("CB 23 23"), 2, "00");
  auto bad = ctl(dir, {"gb26875", "decode", bad_sum});
  CHECK(bad.exit == 1);
  CHECK(bad.out.find("checksum 0xCB expected, 0x00 found") != std::string::npos);
  auto cut = ctl(dir, {"gb26875", "decode", example.substr(0, example.size() - 3)});
  CHECK(cut.exit == 1);
  CHECK(cut.out.find("bytes missing") != std::string::npos);
  auto junk = ctl(dir, {"gb26875", "decode", "40 40 zz"});
  CHECK(junk.exit == 2);
  CHECK(junk.out.find("'z' at position 7 is not a hex digit") != std::string::npos);

  // The worked example in engineering units, with its addresses as the configuration writes them
  // (uitd_address = 889, centre_address = 88888).
  CHECK(ok.out.find("analog value = 653 (65.3 °C)") != std::string::npos);
  CHECK(ok.out.find("source       889 (79 03 00 00 00 00)") != std::string::npos);
  CHECK(ok.out.find("destination  88888 (38 5B 01 00 00 00)") != std::string::npos);
  CHECK(js.doc().value("source", 0) == 889);

  // A log of hex lines: two frames, a line of noise between them, one frame cut off at the end.
  const std::string time_frame =
      "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 08 00 02 1C 01 02 3A 09 1A 09 "
      "0C "
      "40 23 23";
  std::ofstream(dir / "frames.txt") << "2026-12-04 10:00:01.250 rx from centre: " << example << "\n00 11 22\n"
                                    << time_frame << "\n"
                                    << example.substr(0, 30) << "\n";
  auto many = ctl(dir, {"gb26875", "decode", "-f", (dir / "frames.txt").string()});
  INFO(many.out);
  CHECK(many.exit == 0);
  CHECK(many.out.find("-- frame 1 --") != std::string::npos);
  CHECK(many.out.find("-- frame 2 --") != std::string::npos);
  CHECK(many.out.find("type 28 (UITD system time)") != std::string::npos);
  CHECK(
      many.out.find("2 frames, 0 not a frame, 3 bytes outside any frame, 10 bytes of a frame cut off at the "
                    "end") != std::string::npos);
  // The same bytes as a raw capture (what tcpdump -w's payload holds), through standard input.
  std::string raw;
  for (const auto& hex : {example, time_frame}) {
    std::istringstream digits(hex);
    for (std::string byte; digits >> byte;) raw += static_cast<char>(std::stoi(byte, nullptr, 16));
  }
  std::ofstream(dir / "capture.bin", std::ios::binary) << raw;
  auto captured = ctl(dir, {"gb26875", "decode", "-f", (dir / "capture.bin").string()});
  CHECK(captured.exit == 0);
  CHECK(captured.out.find("2 frames, 0 not a frame, 0 bytes outside any frame (read as raw bytes") !=
        std::string::npos);
  CHECK(captured.out.find("analog value = 653 (65.3 °C)") != std::string::npos);
  // --json: one document a frame, a line each.
  auto lines = ctl(dir, {"--json", "gb26875", "decode", "-f", (dir / "capture.bin").string()});
  std::istringstream docs(lines.out);
  std::size_t parsed = 0;
  for (std::string l; std::getline(docs, l);)
    if (json::parse(l, nullptr, false).is_object()) ++parsed;
  CHECK(parsed == 2);
}
