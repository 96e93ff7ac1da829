// The store's bad conditions, from outside, with the real daemon: a disk that fills up and empties
// again, a read-only file system, and a database folder that is not there. In each, alarms still
// reach the platform and the platform is told of the storage fault.
//
// A file system turning read-only under the running daemon (ext4's errors=remount-ro) cannot be
// staged from user space: a remount to read-only is refused while firegated has the file open for
// writing. Its writes then fail as a full disk's do, through the same path, tested below.
//
// The disk is a 2 MiB tmpfs in the daemon's own mount namespace (unshare -rm), reached from the test
// through /proc/<pid>/root, so nothing here can fill or remount the machine's real disks. Where
// user namespaces are not allowed, the two tests that need them say so and are skipped.

#include "old_schemas.hpp"
#include "store/store.hpp"
#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <linux/magic.h>
#include <sys/statfs.h>
#include <csignal>
#include <cstdlib>
#include <fstream>

#include <sqlite3.h>

using namespace firegate::test;
using json = nlohmann::json;

namespace {

bool namespaces_available() {
  return std::system("/usr/bin/unshare -rm /bin/true >/dev/null 2>&1") == 0;
}

/// firegated with its database on a tmpfs of its own (2 MiB unless said), the file `prepared`
/// copied onto it first when given.
struct daemon_on_small_disk {
  temp_dir dir;
  broker mosquitto{dir};
  mqtt_probe platform{mosquitto.port(), "firegate/#"};
  simulator sim{dir, 2};
  std::filesystem::path disk = dir / "disk";
  std::unique_ptr<child> daemon;

  explicit daemon_on_small_disk(bool read_only = false, const std::string& size = "2m",
                                const std::filesystem::path& prepared = {}) {
    std::filesystem::create_directories(disk);
    std::ofstream(dir / "fg.toml") << sd1_site_config(disk / "fg.db", mosquitto.port(), sim.port(), 2);
    const auto ro = read_only ? fmt::format(" && mount -o remount,ro '{}'", disk.string()) : std::string();
    const auto copy = prepared.empty()
                          ? std::string()
                          : fmt::format(" && cp '{}' '{}'", prepared.string(), (disk / "fg.db").string());
    daemon = std::make_unique<child>(
        std::vector<std::string>{
            "/usr/bin/unshare", "-rm", "/bin/sh", "-c",
            fmt::format("mount -t tmpfs -o size={} tmpfs '{}'{}{} && exec '{}' -c '{}'", size, disk.string(),
                        copy, ro, firegated_path(), (dir / "fg.toml").string())},
        dir / "fg.log");
  }
  /// One number from the database, read inside the daemon's mount namespace (SQLite resolves the
  /// /proc/<pid>/root link, so it cannot open the file from here); -1 when that fails.
  std::int64_t query(const std::string& sql) const {
    const auto command = fmt::format(
        "/usr/bin/nsenter -t {} -m -U --preserve-credentials /usr/bin/python3 -c \"import sqlite3; "
        "print(sqlite3.connect('file:{}?mode=ro', uri=True).execute('{}').fetchone()[0])\" 2>&1",
        daemon->pid(), (disk / "fg.db").string(), sql);
    std::string out;
    if (FILE* p = ::popen(command.c_str(), "r")) {
      char buf[256];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
      ::pclose(p);
    }
    try {
      return std::stoll(out);
    } catch (const std::exception&) {
      UNSCOPED_INFO("the query failed: " << sql << ": " << out);
      return -1;
    }
  }
  /// Polls in the database (a row each).
  std::int64_t reading_count() const { return query("SELECT COUNT(*) FROM polls"); }
  /// The tmpfs as the test reaches it; checked to be the tmpfs before anything writes there.
  std::filesystem::path inside() const {
    return std::filesystem::path(fmt::format("/proc/{}/root", daemon->pid())) / disk.relative_path();
  }
  bool on_tmpfs() const {
    struct statfs s {};
    return ::statfs(inside().c_str(), &s) == 0 && s.f_type == TMPFS_MAGIC;
  }
  /// Fills the tmpfs (at most 4 MiB written, whatever happens).
  void fill() const {
    REQUIRE(on_tmpfs());
    std::ofstream out(inside() / "filler", std::ios::binary);
    const std::string chunk(64 * 1024, 'f');
    for (int i = 0; i < 64 && out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())); ++i)
      out.flush();
  }
};

}  // namespace

TEST_CASE("storage: a full disk - alarms still reach the platform - storage_fault then storage_recovery") {
  if (!namespaces_available()) {
    WARN(
        "skipped: this machine does not allow user and mount namespaces (unshare -rm), so the test cannot "
        "give "
        "firegated a small disk of its own");
    return;
  }
  daemon_on_small_disk box;
  // Running, with readings committed.
  INFO(box.daemon->log_text());
  REQUIRE(box.platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 10s));
  REQUIRE(box.on_tmpfs());
  const auto before = box.reading_count();
  REQUIRE(before > 0);

  box.fill();
  box.sim.send("1 state 1");
  auto alarm = box.platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 10s);
  auto fault = box.platform.wait_for([](auto& m) { return is_event(m, "storage_fault"); }, 10s);
  INFO(box.daemon->log_text());
  REQUIRE(alarm);
  REQUIRE(fault);
  CHECK(json::parse(fault->payload)["detail"].get<std::string>().find("cannot write its database") !=
        std::string::npos);
  CHECK(box.daemon->log_text().find("stored=false") != std::string::npos);  // the alarm went from memory

  // Space returns: writing resumes, and what was committed before is all there.
  std::filesystem::remove(box.inside() / "filler");
  auto recovery = box.platform.wait_for([](auto& m) { return is_event(m, "storage_recovery"); }, 10s);
  REQUIRE(recovery);
  CHECK(json::parse(recovery->payload)["alarm_id"] == json::parse(fault->payload)["id"]);
  CHECK(wait_until([&] { return box.reading_count() > before; }, 5s));
  CHECK(box.daemon->stop(SIGTERM) == 0);
}

TEST_CASE(
    "storage: a read-only file system at start - firegated runs on memory - alarms reach the platform") {
  if (!namespaces_available()) {
    WARN("skipped: this machine does not allow user and mount namespaces (unshare -rm)");
    return;
  }
  daemon_on_small_disk box(true);
  auto fault = box.platform.wait_for([](auto& m) { return is_event(m, "storage_fault"); }, 10s);
  INFO(box.daemon->log_text());
  REQUIRE(fault);
  const auto detail = json::parse(fault->payload)["detail"].get<std::string>();
  CHECK(detail.find("cannot open its database") != std::string::npos);
  CHECK(detail.find("Read-only file system") != std::string::npos);
  box.sim.send("2 state 1");
  auto alarm = box.platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 10s);
  REQUIRE(alarm);
  CHECK(json::parse(alarm->payload)["device"]["name"] == "smoke-2");
  CHECK(box.daemon->stop(SIGTERM) == 0);
}

TEST_CASE("storage: a database that cannot be opened at start - firegated runs on memory and says so") {
  temp_dir dir;
  broker mosquitto(dir);
  mqtt_probe platform(mosquitto.port(), "firegate/#");
  simulator sim(dir, 1);
  // A folder that is not there: a missing mount, a typo in storage.path.
  std::ofstream(dir / "fg.toml") << sd1_site_config(dir / "missing" / "fg.db", mosquitto.port(), sim.port(),
                                                    1);
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log");
  auto fault = platform.wait_for([](auto& m) { return is_event(m, "storage_fault"); }, 10s);
  INFO(daemon.log_text());
  REQUIRE(fault);
  const auto detail = json::parse(fault->payload)["detail"].get<std::string>();
  CHECK(detail.find("cannot open its database") != std::string::npos);
  CHECK(detail.find((dir / "missing" / "fg.db").string()) != std::string::npos);
  sim.send("1 state 1");
  CHECK(platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 10s));
  // On memory, a flush that works is no recovery.
  CHECK_FALSE(platform.wait_for([](auto& m) { return is_event(m, "storage_recovery"); }, 1s));
  CHECK(daemon.stop(SIGTERM) == 0);
}

TEST_CASE(
    "storage: a schema-7 file on a disk without room to pack it - left as it was, firegated runs on memory "
    "and says so - with room, packed") {
  if (!namespaces_available()) {
    WARN("skipped: this machine does not allow user and mount namespaces (unshare -rm)");
    return;
  }
  // A file as a schema-7 firegated left it: 100,000 readings of a day ago (about 2.5 MB).
  temp_dir files;
  const auto old_file = files / "old.db";
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(old_file.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, test::schema_6_tables, nullptr, nullptr, nullptr) == SQLITE_OK);
    REQUIRE(
        sqlite3_exec(db,
                     "INSERT INTO series VALUES (1, 'smoke-1', 'state', ''), (2, 'smoke-1', 'smoke', 'dB/m');"
                     "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999) "
                     "INSERT INTO readings (time_ms, series, value, quality) "
                     "SELECT strftime('%s', 'now') * 1000 - 86400000 + (i / 2) * 1000, 1 + i % 2, (i % 7) * "
                     "0.01, 0 FROM n;"
                     "PRAGMA user_version = 7;",
                     nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  {
    // 4 MiB: the file fits, the WAL its packing needs (every page of the old table) does not.
    daemon_on_small_disk box(false, "4m", old_file);
    auto fault = box.platform.wait_for([](auto& m) { return is_event(m, "storage_fault"); }, 20s);
    INFO(box.daemon->log_text());
    REQUIRE(fault);
    const auto detail = json::parse(fault->payload)["detail"].get<std::string>();
    CHECK(detail.find("cannot open its database") != std::string::npos);
    CHECK(detail.find("full") != std::string::npos);
    // Alarms go all the same, and the file is as it was: schema 7, every reading.
    box.sim.send("1 state 1");
    REQUIRE(box.platform.wait_for([](auto& m) { return is_event(m, "fire_alarm"); }, 10s));
    CHECK(box.query("PRAGMA user_version") == 7);
    CHECK(box.query("SELECT COUNT(*) FROM readings") == 100000);
    CHECK(box.daemon->stop(SIGTERM) == 0);
  }
  {
    // With room: packed at start, the old table gone, no storage fault.
    daemon_on_small_disk box(false, "16m", old_file);
    INFO(box.daemon->log_text());
    REQUIRE(box.platform.wait_for([](auto& m) { return m.topic.ends_with("/telemetry"); }, 20s));
    CHECK(box.query("PRAGMA user_version") == store::schema_version());
    CHECK(box.query("SELECT COUNT(*) FROM sqlite_master WHERE name = \\'readings\\'") == 0);
    CHECK(box.query("SELECT COUNT(*) FROM polls") >= 50000);
    CHECK(box.daemon->log_text().find("storage_fault") == std::string::npos);
    CHECK(box.daemon->stop(SIGTERM) == 0);
  }
}
