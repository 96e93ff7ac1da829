#include "systemd_notifier.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

namespace firegate {

namespace {

/// How long a notification that must arrive (READY, STOPPING, more start time) may wait for room in
/// systemd's queue; the others (the watchdog's pings, the status line) never wait: the loop decides
/// alarms and must not stop for systemd (one stuck in a daemon-reload stops reading its socket).
constexpr timeval must_arrive_wait{1, 0};

/// A notification as sd_notify(3) sends it (docs/install.md, "The service's sandbox"): one datagram with the
/// state lines to the AF_UNIX socket named in $NOTIFY_SOCKET, a path or, after "@", a name in Linux's
/// abstract namespace. systemd lists the protocol among the interfaces that may be reimplemented
/// independently; libsystemd, linked for it alone, cost about 1 MiB of resident memory with the
/// compression and crypto libraries it pulls in. Nothing is sent when $NOTIFY_SOCKET is unset (not
/// run by systemd). The kernel gives the receiver our credentials, which systemd's NotifyAccess=
/// checks. A failure is logged (at most hourly), never thrown: the service runs on either way.
void notify_systemd(std::string_view state, bool must_arrive = false) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  if (where == nullptr || where[0] == '\0') return;
  // Logged at most once an hour, with the failures since the last line: a ping dropped while
  // systemd is busy says so once, and a socket gone for good is not a line every watchdog tick.
  static std::atomic<std::int64_t> last_logged{std::numeric_limits<std::int64_t>::min()};
  static std::atomic<std::uint64_t> failures{0};
  const auto complain = [where](const char* what) {
    const auto n = failures.fetch_add(1) + 1;
    const auto now = std::chrono::steady_clock::now().time_since_epoch() / std::chrono::seconds(1);
    auto last = last_logged.load();
    if (last != std::numeric_limits<std::int64_t>::min() && now - last < 3600) return;
    if (!last_logged.compare_exchange_strong(last, now)) return;
    failures.store(0);
    spdlog::warn(
        "systemd notification not sent socket={} error=\"{}\" failures={} action=\"check NOTIFY_SOCKET "
        "(systemd sets it for Type=notify); systemd may count the service as not started\"",
        where, what, n);
  };
  const std::string_view address(where);
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  if ((address.front() != '/' && address.front() != '@') || address.size() >= sizeof to.sun_path) {
    complain("not a socket path or an abstract name (@...) this build can reach");
    return;
  }
  std::memcpy(to.sun_path, address.data(), address.size());
  if (address.front() == '@') to.sun_path[0] = '\0';  // abstract: no terminating NUL counted
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    complain(std::strerror(errno));
    return;
  }
  if (must_arrive) ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &must_arrive_wait, sizeof must_arrive_wait);
  const int flags = MSG_NOSIGNAL | (must_arrive ? 0 : MSG_DONTWAIT);
  if (::sendto(fd, state.data(), state.size(), flags, reinterpret_cast<const sockaddr*>(&to), length) < 0) {
    complain(std::strerror(errno));
  }
  ::close(fd);
}

}  // namespace

void systemd_notifier::ready(std::string_view s) {
  notify_systemd(fmt::format("READY=1\nSTATUS={}", s), true);
}
void systemd_notifier::status(std::string_view s) {
  notify_systemd(fmt::format("STATUS={}", s));
}
void systemd_notifier::reloading() {
  notify_systemd("RELOADING=1");
}
void systemd_notifier::stopping() {
  notify_systemd("STOPPING=1", true);
}
void systemd_notifier::watchdog() {
  notify_systemd("WATCHDOG=1");
}
void systemd_notifier::extend_start(std::chrono::microseconds more, std::string_view s) {
  notify_systemd(fmt::format("EXTEND_TIMEOUT_USEC={}\nSTATUS={}", more.count(), s), true);
}

std::optional<std::chrono::microseconds> systemd_notifier::watchdog_interval() {
  // As sd_watchdog_enabled(3): WATCHDOG_USEC, a positive number of microseconds short of infinity
  // (all bits set), for this process when WATCHDOG_PID is unset or names it. A day at most: the
  // loop's tick takes the smaller of this and 10 s, in nanoseconds.
  const auto number = [](const char* text) -> std::optional<unsigned long long> {
    if (text == nullptr || *text < '0' || *text > '9') return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0') return std::nullopt;
    return n;
  };
  const auto usec = number(std::getenv("WATCHDOG_USEC"));
  if (!usec || *usec == 0 || *usec == std::numeric_limits<unsigned long long>::max()) return std::nullopt;
  if (const char* pid_text = std::getenv("WATCHDOG_PID")) {
    const auto pid = number(pid_text);
    if (!pid || *pid != static_cast<unsigned long long>(::getpid())) return std::nullopt;
  }
  return std::min(std::chrono::microseconds(*usec / 2), std::chrono::microseconds(std::chrono::hours(24)));
}

}  // namespace firegate
