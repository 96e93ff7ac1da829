// The application's watch on the system clock (app/clock_watch.hpp, docs/clock.md): its state in
// the log and the status, and the clock_unsynchronised fault.

#include "application.hpp"
#include "domain/time_text.hpp"
#include "uplink/gb26875/gb26875_link.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace firegate {

namespace {
double ms_of(std::int64_t us) {
  return static_cast<double>(us) / 1000.0;
}

/// The error bound for a log line: "-" where the source does not give one (timedated).
std::string bound_ms(std::int64_t us) {
  return us < 0 ? std::string("-") : fmt::format("{:.3f}", ms_of(us));
}
}  // namespace

void application::check_clock() {
  if (const std::pair now_set{cfg_.alarms.clock, cfg_.alarms.clock_check}; now_set != clock_reading_) {
    clock_reading_ = now_set;
    clock_.set_reader(clock_reader(now_set.first, now_set.second));
  }
  const auto was = clock_.synchronised();
  const auto now = std::chrono::steady_clock::now();
  const auto due = clock_.check(now, cfg_.alarms.clock_fault_after);
  const auto& r = clock_.last();
  if (!r.synchronised) {
    if (r.pending) return;  // timedated's first answer is on its way
    if (!std::exchange(clock_unreadable_logged_, true)) {
      spdlog::warn(
          "clock state unreadable error=\"{}\" effect=\"events carry clock_synchronised null; no "
          "clock fault is raised\" check=\"the unit's system call filter lets adjtimex through\"",
          r.error);
    }
    return;
  }
  clock_unreadable_logged_ = false;
  if (was != r.synchronised) {
    if (*r.synchronised) {
      spdlog::info("clock synchronised source={} max_error_ms={}", r.source, bound_ms(r.max_error_us));
    } else {
      spdlog::warn(
          "clock not synchronised source={} max_error_ms={} fault_after_s={} check=\"the time "
          "service (timedatectl timesync-status) and that the box reaches its NTP servers (UDP 123)\"",
          r.source, bound_ms(r.max_error_us), cfg_.alarms.clock_fault_after.count());
    }
  }
  if (due == clock_watch::due::nothing) return;
  event e;
  e.id = new_event_id();
  e.device = cfg_.gateway.id;
  e.time = clock::now();
  if (due == clock_watch::due::fault) {
    clock_.fault_id = e.id;
    e.kind = event_kind::clock_unsynchronised;
    const auto for_s = clock_.unsynchronised_for(now).count();
    e.value = static_cast<double>(for_s);
    e.unit = "s";
    e.detail = fmt::format(
        "the system clock has not been synchronised for {} s (since {}, as {} says): alarm times may be "
        "wrong; check the time service (timedatectl timesync-status) and that the box reaches its NTP "
        "servers (UDP 123)",
        for_s, clock_.unsynchronised_since() ? iso8601(*clock_.unsynchronised_since()) : std::string("-"),
        r.source);
    spdlog::error("clock fault raised unsynchronised_s={} fault_after_s={} event={}", for_s,
                  cfg_.alarms.clock_fault_after.count(), e.id);
  } else {
    e.kind = event_kind::clock_synchronised;
    e.alarm_id = std::exchange(clock_.fault_id, {});
    e.detail = r.max_error_us >= 0
                   ? fmt::format("the system clock is synchronised again (its error is at most {:.0f} ms)",
                                 ms_of(r.max_error_us))
                   : fmt::format("the system clock is synchronised again (as {} says)", r.source);
    spdlog::info("clock fault ended event={} ends={}", e.id, e.alarm_id);
  }
  raise(std::move(e));
}

void application::schedule_clock() {
  check_clock();
  clock_timer_.expires_after(cfg_.alarms.clock_check);
  clock_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) schedule_clock();
  });
}

gateway_health::clock_health application::clock_health() const {
  gateway_health::clock_health c;
  const auto& r = clock_.last();
  c.synchronised = r.synchronised;
  c.max_error_us = r.max_error_us;
  c.error = r.error;
  c.source = r.source;
  c.unsynchronised_since = clock_.unsynchronised_since();
  c.fault = clock_.fault_id;
  for (const auto& u : uplinks_) {
    if (const auto* gb = dynamic_cast<const gb26875_link*>(u.link.get())) {
      if (const auto& m = gb->link().centre_clock()) {
        c.platform_offset_ms = std::chrono::duration_cast<std::chrono::milliseconds>(m->offset).count();
        c.platform_measured = m->at;
      }
    }
  }
  return c;
}

}  // namespace firegate
