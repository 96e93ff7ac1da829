#include "systemd_notifier.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace firegate {

namespace {

/// A notification as sd_notify(3) sends it (docs/install.md, "systemd"): one datagram with the state
/// lines to the AF_UNIX socket named in $NOTIFY_SOCKET, a path or, after "@", a name in Linux's
/// abstract namespace. systemd lists the protocol among the interfaces that may be reimplemented
/// independently; libsystemd, linked for it alone, cost about 1 MiB of resident memory with the
/// compression and crypto libraries it pulls in. Nothing is sent when $NOTIFY_SOCKET is unset (not
/// run by systemd). The kernel gives the receiver our credentials, which systemd's NotifyAccess=
/// checks. A failure is logged once, never thrown: the service runs on either way.
void notify_systemd(std::string_view state) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  if (where == nullptr || where[0] == '\0') return;
  static std::atomic<bool> complained{false};
  const auto complain = [where](const char* what) {
    if (!complained.exchange(true)) {
      spdlog::warn(
          "systemd notification not sent socket={} error=\"{}\" action=\"check NOTIFY_SOCKET "
          "(systemd sets it for Type=notify); systemd may count the service as not started\"",
          where, what);
    }
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
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&to), length) <
      0) {
    complain(std::strerror(errno));
  }
  ::close(fd);
}

}  // namespace

void systemd_notifier::ready(std::string_view s) {
  notify_systemd(fmt::format("READY=1\nSTATUS={}", s));
}
void systemd_notifier::status(std::string_view s) {
  notify_systemd(fmt::format("STATUS={}", s));
}
void systemd_notifier::reloading() {
  notify_systemd("RELOADING=1");
}
void systemd_notifier::stopping() {
  notify_systemd("STOPPING=1");
}
void systemd_notifier::watchdog() {
  notify_systemd("WATCHDOG=1");
}
void systemd_notifier::extend_start(std::chrono::microseconds more, std::string_view s) {
  notify_systemd(fmt::format("EXTEND_TIMEOUT_USEC={}\nSTATUS={}", more.count(), s));
}

std::optional<std::chrono::microseconds> systemd_notifier::watchdog_interval() {
  // As sd_watchdog_enabled(3): WATCHDOG_USEC, a positive number of microseconds, for this process
  // when WATCHDOG_PID is unset or names it.
  const char* usec_text = std::getenv("WATCHDOG_USEC");
  if (usec_text == nullptr || *usec_text < '0' || *usec_text > '9') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long usec = std::strtoull(usec_text, &end, 10);
  if (errno != 0 || end == usec_text || *end != '\0' || usec == 0) return std::nullopt;
  if (const char* pid_text = std::getenv("WATCHDOG_PID")) {
    if (std::strtoll(pid_text, nullptr, 10) != static_cast<long long>(::getpid())) return std::nullopt;
  }
  return std::chrono::microseconds(usec / 2);
}

}  // namespace firegate
