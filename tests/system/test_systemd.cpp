// The systemd contract, from outside, as systemd sees the daemon: the notifications of a Type=notify
// service (READY with STATUS, the watchdog's pings at half its interval, STOPPING) on a socket given
// as a path or an abstract name, a socket that is not there, and journald's priority prefixes.

#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <csignal>
#include <cstddef>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

using namespace firegate::test;

namespace {

/// Stands in for systemd's notification socket: a datagram socket collecting what firegated sends.
/// A path starting with "@" is a name in Linux's abstract namespace, as $NOTIFY_SOCKET writes one.
class notify_socket {
 public:
  explicit notify_socket(const std::filesystem::path& path) : path_(path.string()) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    auto length = static_cast<socklen_t>(sizeof a);
    if (path_.starts_with('@')) {
      a.sun_path[0] = '\0';
      length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
    }
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), length) == 0);
  }
  ~notify_socket() { ::close(fd_); }
  const std::string& path() const { return path_; }
  /// Every datagram received so far, appended to `seen`.
  const std::vector<std::string>& drain() {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;)
      seen_.emplace_back(buf, static_cast<std::size_t>(n));
    return seen_;
  }
  std::size_t count(const std::string& needle) {
    std::size_t n = 0;
    for (const auto& m : drain()) n += m.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }

 private:
  std::string path_;
  int fd_{-1};
  std::vector<std::string> seen_;
};

}  // namespace

TEST_CASE(
    "systemd contract: READY=1 with STATUS - WATCHDOG=1 at half the interval - STOPPING=1 - journald "
    "priorities") {
  temp_dir dir;
  broker mosquitto(dir);
  const auto text = demo_config(dir, mosquitto.port());
  std::ofstream(dir / "fg.toml") << text;
  notify_socket systemd(dir / "notify.sock");
  // A 400 ms watchdog: firegated must ping every 200 ms.
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log", false,
               {"NOTIFY_SOCKET=" + systemd.path(), "WATCHDOG_USEC=400000", "JOURNAL_STREAM=8:1234"});
  REQUIRE(wait_until([&] { return systemd.count("READY=1") >= 1; }, 10s));
  bool has_status = false;
  for (const auto& m : systemd.drain())
    has_status |=
        m.find("READY=1\nSTATUS=devices=5") != std::string::npos;  // 3 detectors, a relay, 1 wireless
  CHECK(has_status);
  const auto before = systemd.count("WATCHDOG=1");
  REQUIRE(wait_until([&] { return systemd.count("WATCHDOG=1") >= before + 5; }, 3s));
  CHECK(daemon.stop(SIGTERM) == 0);
  CHECK(systemd.count("STOPPING=1") == 1);
  // Under journald: a priority prefix, no timestamp of our own.
  const auto log = daemon.log_text();
  CHECK(std::regex_search(log, std::regex(R"((^|\n)<6>firegated started)")));
  std::istringstream lines(log);
  std::size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    INFO(line);
    CHECK(std::regex_search(line, std::regex(R"(^<[0-7]>[a-z])")));
  }
  CHECK(n >= 3);
}

TEST_CASE(
    "systemd contract: a notification socket in the abstract namespace (@name) gets READY=1 and STOPPING=1") {
  // systemd gives an abstract name where a path would not reach the service (a chroot, a container).
  temp_dir dir;
  broker mosquitto(dir);
  std::ofstream(dir / "fg.toml") << demo_config(dir, mosquitto.port());
  // Abstract names are shared by everything on the host's network: the pid and a random part.
  notify_socket systemd(fmt::format("@firegate-test-notify-{}-{}", ::getpid(), std::random_device{}()));
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log", false,
               {"NOTIFY_SOCKET=" + systemd.path()});
  const bool ready = wait_until([&] { return systemd.count("READY=1\nSTATUS=devices=5") == 1; }, 10s);
  INFO(daemon.log_text());
  REQUIRE(ready);
  CHECK(daemon.stop(SIGTERM) == 0);
  CHECK(systemd.count("STOPPING=1") == 1);
  CHECK(daemon.log_text().find("systemd notification not sent") == std::string::npos);
}

TEST_CASE(
    "systemd contract: a NOTIFY_SOCKET that names no socket is logged once an hour at most, and the daemon "
    "runs") {
  temp_dir dir;
  broker mosquitto(dir);
  std::ofstream(dir / "fg.toml") << demo_config(dir, mosquitto.port());
  child daemon({firegated_path(), "-c", (dir / "fg.toml").string()}, dir / "fg.log", false,
               {"NOTIFY_SOCKET=" + (dir / "no-such.sock").string(), "WATCHDOG_USEC=400000"});
  // Several watchdog pings (every 200 ms) fail after the start's: one line says so.
  REQUIRE(wait_until([&] { return daemon.log_text().find("firegated started") != std::string::npos; }, 10s));
  REQUIRE(wait_until(
      [&] {
        return daemon.log_text().find("systemd notification not sent socket=" +
                                      (dir / "no-such.sock").string()) != std::string::npos;
      },
      10s));
  // Up 2 s by its own account: ten watchdog pings or so have failed since.
  REQUIRE(wait_until(
      [&] {
        const auto j = ctl(dir, {"--json", "status"}).doc();
        return j.is_object() && j.contains("gateway") && j["gateway"].value("uptime_s", std::int64_t{0}) >= 2;
      },
      10s));
  CHECK(daemon.running());
  CHECK(daemon.stop(SIGTERM) == 0);
  CHECK(count_of(daemon.log_text(), "systemd notification not sent") == 1);
}
