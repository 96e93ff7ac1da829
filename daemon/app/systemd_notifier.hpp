#pragma once
// sd_notify(3) for Type=notify: READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1,
// EXTEND_TIMEOUT_USEC=.
// Harmless when not run by systemd (NOTIFY_SOCKET unset).

#include <chrono>
#include <optional>
#include <string_view>

namespace firegate {

class systemd_notifier {
 public:
  void ready(std::string_view status);
  void status(std::string_view status);
  void reloading();
  void stopping();
  void watchdog();
  /// Start-up work that may outlast TimeoutStartSec= (a schema migration): asks for `more` time
  /// (EXTEND_TIMEOUT_USEC) and says what is being done.
  void extend_start(std::chrono::microseconds more, std::string_view status);
  /// Half the WatchdogSec= interval when the watchdog is on: how often watchdog() must be called.
  static std::optional<std::chrono::microseconds> watchdog_interval();
};

}  // namespace firegate
