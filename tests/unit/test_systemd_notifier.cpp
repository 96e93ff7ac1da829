// The watchdog's interval as sd_watchdog_enabled(3) reads it from the environment systemd sets:
// WATCHDOG_USEC, for this process only when WATCHDOG_PID is unset or names it.

#include "app/systemd_notifier.hpp"

#include <unistd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>

using namespace std::chrono_literals;
using firegate::systemd_notifier;

namespace {

/// Sets (or with nullptr unsets) the two variables for one check, and restores neither: each
/// section sets both.
std::optional<std::chrono::microseconds> interval_with(const char* usec, const char* pid) {
  usec ? ::setenv("WATCHDOG_USEC", usec, 1) : ::unsetenv("WATCHDOG_USEC");
  pid ? ::setenv("WATCHDOG_PID", pid, 1) : ::unsetenv("WATCHDOG_PID");
  auto out = systemd_notifier::watchdog_interval();
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  return out;
}

}  // namespace

TEST_CASE("systemd watchdog: half of WATCHDOG_USEC, for this process only") {
  const auto self = std::to_string(::getpid());
  const auto other = std::to_string(::getpid() + 1);
  CHECK(interval_with(nullptr, nullptr) == std::nullopt);           // no watchdog
  CHECK(interval_with("400000", nullptr) == 200000us);              // WatchdogSec=400ms
  CHECK(interval_with("30000000", self.c_str()) == 15s);            // ours
  CHECK(interval_with("30000000", other.c_str()) == std::nullopt);  // a child's or a parent's
  CHECK(interval_with("0", nullptr) == std::nullopt);
  CHECK(interval_with("-5", nullptr) == std::nullopt);
  CHECK(interval_with("12ms", nullptr) == std::nullopt);
  CHECK(interval_with("", nullptr) == std::nullopt);
  CHECK(interval_with("18446744073709551615", nullptr) == std::nullopt);  // infinity: no watchdog
  CHECK(interval_with("400000", (self + "abc").c_str()) == std::nullopt);
  CHECK(interval_with("9000000000000000", nullptr) == std::chrono::hours(24));  // bounded
}
