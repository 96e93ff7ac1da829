// A damaged database never hides an alarm. Each test commits two fire alarms that the platform has
// not received (its broker is not there yet), stops firegated, damages the real file with real
// bytes (found and written by Python's own sqlite3 and file I/O, not by firegate's code), and starts
// firegated again with the broker up: the platform must get both alarms, under their first ids,
// marked recovered, and a storage_fault that says what was carried over and what was lost, then a
// storage_recovery once the fresh file takes writes and reads.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <set>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

/// Runs a Python script (Python's sqlite3 is the independent reader and writer of the file);
/// returns its stdout and stderr, failing the test when it fails.
std::string python(const temp_dir& dir, const std::string& script) {
  static int n = 0;
  const auto file = dir / fmt::format("probe-{}.py", ++n);
  std::ofstream(file) << script;
  child c({"/usr/bin/python3", file.string()}, dir / fmt::format("probe-{}.log", n));
  const int rc = c.stop(0, 30s);
  const auto out = read_text(dir / fmt::format("probe-{}.log", n));
  INFO(out);
  REQUIRE(rc == 0);
  return out;
}

struct damaged_site {
  temp_dir dir;
  std::uint16_t broker_port = free_port();
  simulator sim{dir, 6};
  std::filesystem::path db = dir / "fg.db";
  std::set<std::string> fire_ids;  ///< the two alarms as the first run committed them

  damaged_site() {
    // Six detectors polled fast, so that readings fill several pages of the file in a few seconds.
    auto config = sd1_site_config(db, broker_port, sim.port(), 6, false);
    config = std::regex_replace(config, std::regex("poll_interval_ms = 500"), "poll_interval_ms = 50");
    std::ofstream(dir / "fg.toml") << config;
  }

  /// First run, no broker: both detectors in fire, committed, not delivered; readings pile up.
  std::unique_ptr<child> first_run() {
    auto daemon = std::make_unique<child>(
        std::vector<std::string>{firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg-1.log");
    sim.send("1 state 1\n2 state 1\n");
    REQUIRE(wait_until(
        [&] {
          const auto log = daemon->log_text();
          return log.find("type=fire_alarm device=smoke-1") != std::string::npos &&
                 log.find("type=fire_alarm device=smoke-2") != std::string::npos;
        },
        15s));
    REQUIRE(wait_until([&] { return count("polls") >= 800; }, 30s));
    read_fire_ids();
    return daemon;
  }

  void commit_two_fires() {
    auto daemon = first_run();
    REQUIRE(daemon->stop(SIGTERM) == 0);
    // Everything into the main file (no WAL left beside it), so that the damage below hits what
    // the next start reads.
    python(dir,
           fmt::format("import sqlite3\nc = sqlite3.connect('{}')\nc.execute('PRAGMA "
                       "wal_checkpoint(TRUNCATE)')\nc.execute('PRAGMA journal_mode=DELETE')\nc.close()\n",
                       db.string()));
    REQUIRE_FALSE(std::filesystem::exists(db.string() + "-wal"));
  }

  void read_fire_ids() {
    // The records as stored (docs/storage.md): the ids the platform must see again.
    const auto out = python(dir, fmt::format(R"(
import sqlite3, json
c = sqlite3.connect('file:{}?mode=ro', uri=True)
for (p,) in c.execute("SELECT payload FROM outbox WHERE lane = 0"):
    j = json.loads(p)
    if j["kind"] == "fire_alarm": print(j["id"])
)",
                                             db.string()));
    std::istringstream in(out);
    for (std::string id; std::getline(in, id);) {
      if (!id.empty()) fire_ids.insert(id);
    }
    REQUIRE(fire_ids.size() == 2);
  }

  long count(const std::string& table) {
    const auto out = python(dir, fmt::format("import sqlite3\nprint(sqlite3.connect('file:{}?mode=ro', "
                                             "uri=True).execute('SELECT COUNT(*) FROM {}').fetchone()[0])\n",
                                             db.string(), table));
    return std::stol(out);
  }

  /// Overwrites one page of the file (1-based) with bytes no b-tree page can hold.
  void smash_page(const std::string& which_sql) {
    python(dir, fmt::format(R"(
import sqlite3
c = sqlite3.connect('file:{0}?mode=ro', uri=True)
size = c.execute("PRAGMA page_size").fetchone()[0]
page = c.execute("{1}").fetchone()[0]
c.close()
with open('{0}', 'r+b') as f:
    f.seek((page - 1) * size)
    f.write(bytes([0xA5]) * size)
print(page)
)",
                            db.string(), which_sql));
  }

  std::filesystem::path moved_file() const {
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      const auto name = f.path().filename().string();
      if (name.starts_with("fg.db.corrupt-") && !name.ends_with("-wal") && !name.ends_with("-shm"))
        return f.path();
    }
    return {};
  }
};

/// The fire alarms the platform received, by id, and whether each was marked recovered.
std::map<std::string, bool> fires_received(mqtt_probe& platform) {
  std::map<std::string, bool> out;
  for (const auto& m : platform.messages()) {
    const auto j = json::parse(m.payload, nullptr, false);
    if (j.is_object() && j.value("type", "") == "fire_alarm")
      out[j.value("id", "")] = j.value("recovered", false);
  }
  return out;
}

}  // namespace

TEST_CASE("damaged database: a page of readings smashed - both undelivered alarms go out marked recovered") {
  damaged_site site;
  site.commit_two_fires();
  // A leaf page of the readings, in the middle of the table.
  site.smash_page(
      "SELECT pageno FROM dbstat WHERE name = 'polls' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 "
      "OFFSET (SELECT COUNT(*) / 2 FROM dbstat WHERE name = 'polls' AND pagetype = 'leaf')");

  broker mosquitto(site.dir, site.broker_port);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  child daemon({firegated_path(), "-c", (site.dir / "fg.toml").string()}, site.dir / "fg-2.log");
  const auto fault = wait_event_where(
      platform, "storage_fault", [](const json&) { return true; }, 20s);
  INFO(daemon.log_text());
  REQUIRE(fault);
  const auto detail = fault->value("detail", "");
  CHECK(detail.find("was damaged") != std::string::npos);
  CHECK(detail.find("moved to " + site.db.string() + ".corrupt-") != std::string::npos);
  CHECK(std::regex_search(
      detail,
      std::regex(R"(\d+ events and [2-9]\d* undelivered alarm and fault messages were carried over)")));
  CHECK(detail.find("could not be read") == std::string::npos);
  REQUIRE(wait_until([&] { return fires_received(platform).size() >= 2; }, 20s));
  const auto fires = fires_received(platform);
  for (const auto& id : site.fire_ids) {
    INFO(id);
    REQUIRE(fires.contains(id));
    CHECK(fires.at(id));  // marked recovered
  }
  // The fire is still on: restored as open, not raised again under a new id.
  CHECK(fires.size() == 2);
  // The fresh file takes writes and reads: the fault ends.
  REQUIRE(wait_event_where(
      platform, "storage_recovery",
      [&](const json& j) { return j.value("alarm_id", "") == fault->value("id", ""); }, 20s));
  CHECK(!site.moved_file().empty());
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE("damaged database: the outbox root page smashed - the alarms go again from the event history") {
  damaged_site site;
  site.commit_two_fires();
  site.smash_page("SELECT rootpage FROM sqlite_master WHERE name = 'outbox'");

  broker mosquitto(site.dir, site.broker_port);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  child daemon({firegated_path(), "-c", (site.dir / "fg.toml").string()}, site.dir / "fg-2.log");
  const auto fault = wait_event_where(
      platform, "storage_fault", [](const json&) { return true; }, 20s);
  INFO(daemon.log_text());
  REQUIRE(fault);
  const auto detail = fault->value("detail", "");
  CHECK(detail.find("could not be read") != std::string::npos);
  CHECK(detail.find("sent again") != std::string::npos);
  REQUIRE(wait_until([&] { return fires_received(platform).size() >= 2; }, 20s));
  const auto fires = fires_received(platform);
  for (const auto& id : site.fire_ids) {
    INFO(id);
    REQUIRE(fires.contains(id));
    CHECK(fires.at(id));
  }
  CHECK(fires.size() == 2);
  CHECK(wait_event_where(
      platform, "storage_recovery", [](const json&) { return true; }, 20s));
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE("damaged database: truncated to 0 bytes - a storage fault, not a fresh start in silence") {
  damaged_site site;
  site.commit_two_fires();
  std::filesystem::resize_file(site.db, 0);

  broker mosquitto(site.dir, site.broker_port);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  child daemon({firegated_path(), "-c", (site.dir / "fg.toml").string()}, site.dir / "fg-2.log");
  const auto fault = wait_event_where(
      platform, "storage_fault", [](const json&) { return true; }, 20s);
  INFO(daemon.log_text());
  REQUIRE(fault);
  const auto detail = fault->value("detail", "");
  CHECK(detail.find("empty (0 bytes)") != std::string::npos);
  CHECK(detail.find("nothing could be read") != std::string::npos);
  CHECK(!site.moved_file().empty());
  // What the file held is gone, and said so; the fires still burning are raised afresh.
  REQUIRE(wait_until([&] { return fires_received(platform).size() >= 2; }, 20s));
  for (const auto& [id, recovered] : fires_received(platform)) {
    CHECK_FALSE(site.fire_ids.contains(id));
    CHECK_FALSE(recovered);
  }
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE(
    "damaged database: a page of readings smashed under the running daemon - the alarms go first, then the "
    "file "
    "is replaced") {
  damaged_site site;
  auto daemon = site.first_run();
  // Into the main file while it runs (SQLite lets another connection checkpoint), then the oldest
  // readings page smashed there: the first telemetry the backlog reads once the broker is back.
  python(site.dir, fmt::format("import sqlite3\nc = sqlite3.connect('{}')\nprint(c.execute('PRAGMA "
                               "wal_checkpoint(TRUNCATE)').fetchone())\n",
                               site.db.string()));
  site.smash_page("SELECT MIN(pageno) FROM dbstat WHERE name = 'polls' AND pagetype = 'leaf'");

  broker mosquitto(site.dir, site.broker_port);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  // The alarms are read past the damaged telemetry and delivered.
  REQUIRE(wait_until([&] { return fires_received(platform).size() >= 2; }, 30s));
  for (const auto& id : site.fire_ids) CHECK(fires_received(platform).contains(id));
  // The damage is found, the file moved aside while running, and the platform told.
  const auto fault = wait_event_where(
      platform, "storage_fault", [](const json&) { return true; }, 30s);
  INFO(daemon->log_text());
  REQUIRE(fault);
  CHECK(fault->value("detail", "").find("was damaged") != std::string::npos);
  CHECK(!site.moved_file().empty());
  REQUIRE(wait_event_where(
      platform, "storage_recovery",
      [&](const json& j) { return j.value("alarm_id", "") == fault->value("id", ""); }, 30s));
  // The fresh file works: a new alarm is stored and delivered.
  site.sim.send("1 state 0\n");
  REQUIRE(wait_event_where(
      platform, "fire_recovery", [](const json& j) { return j["device"].value("name", "") == "smoke-1"; },
      20s));
  CHECK(daemon->log_text().find("stored=false") == std::string::npos);
  CHECK(daemon->stop(SIGTERM) == 0);
}
