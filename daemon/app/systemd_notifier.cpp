#include "systemd_notifier.hpp"

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

#include <string>

namespace firegate {

void systemd_notifier::ready(std::string_view s) {
  sd_notify(0, fmt::format("READY=1\nSTATUS={}", s).c_str());
}
void systemd_notifier::status(std::string_view s) {
  sd_notify(0, fmt::format("STATUS={}", s).c_str());
}
void systemd_notifier::reloading() {
  sd_notify(0, "RELOADING=1");
}
void systemd_notifier::stopping() {
  sd_notify(0, "STOPPING=1");
}
void systemd_notifier::watchdog() {
  sd_notify(0, "WATCHDOG=1");
}
void systemd_notifier::extend_start(std::chrono::microseconds more, std::string_view s) {
  sd_notify(0, fmt::format("EXTEND_TIMEOUT_USEC={}\nSTATUS={}", more.count(), s).c_str());
}

std::optional<std::chrono::microseconds> systemd_notifier::watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace firegate
