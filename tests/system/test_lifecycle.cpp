// Proves the daemon's lifecycle from outside, as systemd and a technician see it: --check-config exit
// codes and messages, a refusal to start on a broken file, SIGHUP applying a valid file and keeping
// the running one when the new file is broken, and SIGTERM exiting 0.

#include "support.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

using namespace firegate::test;

namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int run(const std::vector<std::string>& argv, const temp_dir& dir, std::string& output) {
  const auto log = dir / ("run-" + std::to_string(std::rand()) + ".log");
  child c(argv, log);
  const int rc = c.stop(0, 10s);  // signal 0: just wait
  output = read_text(log);
  return rc;
}

}  // namespace

TEST_CASE("check-config: 0 for the shipped example - 1 with every error listed for a broken copy") {
  temp_dir dir;
  std::string out;
  CHECK(run({firegated_path(), "--check-config", source_dir() + "/config/firegate.toml"}, dir, out) == 0);
  CHECK(out.find("configuration is valid") != std::string::npos);

  auto text = read_text(source_dir() + "/config/firegate.toml");
  text = std::regex_replace(text, std::regex("unit_id = 2"), "unit_id = 300");
  text = std::regex_replace(text, std::regex("poll_interval_ms = 1000"), "poll_intervall_ms = 1000");
  text = std::regex_replace(text, std::regex("category = \"restaurant\""), "category = \"cafe\"");
  std::ofstream(dir / "broken.toml") << text;
  CHECK(run({firegated_path(), "--check-config", (dir / "broken.toml").string()}, dir, out) == 1);
  CHECK(
      std::regex_search(out, std::regex(R"(broken\.toml:\d+ devices\[1\]\.unit_id: 300 is outside 1–247)")));
  CHECK(std::regex_search(out, std::regex(R"(broken\.toml:\d+ buses\[0\]\.poll_intervall_ms: unknown key)")));
  CHECK(std::regex_search(out, std::regex(R"(broken\.toml:\d+ site\.category: "cafe" is not known)")));
  CHECK(out.find("3 error(s)") != std::string::npos);

  CHECK(run({firegatectl_path(), "config", "check", (dir / "broken.toml").string()}, dir, out) == 1);
  CHECK(out.find("3 error(s)") != std::string::npos);
}

TEST_CASE("firegated refuses to start on a broken file and says how to check it") {
  temp_dir dir;
  std::ofstream(dir / "bad.toml") << "[gateway]\nid = \"x\"\n";
  std::string out;
  CHECK(run({firegated_path(), "-c", (dir / "bad.toml").string()}, dir, out) == 1);
  CHECK(out.find("not starting: configuration invalid") != std::string::npos);
  CHECK(out.find("--check-config") != std::string::npos);
}

TEST_CASE("SIGHUP keeps the running configuration when the new one is broken - applies a valid one") {
  temp_dir dir;
  broker mosquitto(dir);
  auto text = read_text(source_dir() + "/config/demo/firegate.toml");
  text = std::regex_replace(text, std::regex("/tmp/firegate-demo/firegate.db"), (dir / "fg.db").string());
  text = std::regex_replace(text, std::regex("port = 18830"), "port = " + std::to_string(mosquitto.port()));
  const auto cfg = dir / "fg.toml";
  std::ofstream(cfg) << text;
  child daemon({firegated_path(), "-c", cfg.string()}, dir / "fg.log");
  REQUIRE(wait_until([&] { return daemon.log_text().find("firegated started") != std::string::npos; }, 10s));

  std::ofstream(cfg, std::ios::trunc) << text << "\n[oops]\n";
  ::kill(daemon.pid(), SIGHUP);
  REQUIRE(wait_until([&] { return daemon.log_text().find("reload rejected") != std::string::npos; }, 10s));
  CHECK(daemon.log_text().find("key=oops") != std::string::npos);
  CHECK(daemon.running());

  std::ofstream(cfg, std::ios::trunc)
      << std::regex_replace(text, std::regex("unit_id = 3\n"), "unit_id = 4\n");
  ::kill(daemon.pid(), SIGHUP);
  REQUIRE(wait_until([&] { return daemon.log_text().find("reload applied") != std::string::npos; }, 10s));
  CHECK(daemon.stop(SIGTERM) == 0);
  CHECK(daemon.log_text().find("firegated stopped") != std::string::npos);
}
