#include "domain/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace firegate {

std::string to_string(const report_policy& p) {
  std::string out = p.on == report_policy::mode::every_poll ? "every poll" : "change";
  if (p.on == report_policy::mode::change && p.deadband > 0)
    out += fmt::format(" > {}{}", p.deadband, p.deadband_percent ? " %" : "");
  if (p.at_most_every.count() > 0) out += fmt::format(", at most every {} s", p.at_most_every.count());
  if (p.at_least_every.count() > 0) out += fmt::format(", at least every {} s", p.at_least_every.count());
  return out;
}

namespace {

bool moved(const report_policy& p, double from, double to) {
  if (std::isnan(from) || std::isnan(to)) return std::isnan(from) != std::isnan(to);
  const double step = std::abs(to - from);
  if (p.deadband <= 0) return step > 0;
  const double band = p.deadband_percent ? std::abs(from) * p.deadband / 100 : p.deadband;
  return step > band || (band == 0 && step > 0);
}

/// The keep-alive period `t` falls in: whole multiples of `every` since the epoch.
std::int64_t period(clock::time_point t, std::chrono::seconds every) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const auto length = std::chrono::duration_cast<std::chrono::milliseconds>(every).count();
  return ms >= 0 ? ms / length : (ms - length + 1) / length;
}

}  // namespace

bool report_filter::decide(const reading& r, const report_policy& p) {
  // Every poll with no limit needs nothing remembered (a fleet on every poll costs no memory here).
  if (p.on == report_policy::mode::every_poll && p.at_most_every.count() == 0 &&
      p.at_least_every.count() == 0)
    return true;
  auto& points = last_[r.device];
  auto it =
      std::find_if(points.begin(), points.end(), [&](const last_report& l) { return l.point == r.point; });
  const auto remember = [&] {
    if (it == points.end()) {
      points.push_back({r.point, r.value, r.q, r.time});
    } else {
      it->value = r.value;
      it->q = r.q;
      it->time = r.time;
    }
    return true;
  };
  // The first value, a change of quality, or a clock set back (nothing to measure from).
  if (it == points.end() || it->q != r.q || r.time < it->time) return remember();
  if (p.at_least_every.count() > 0 && period(r.time, p.at_least_every) != period(it->time, p.at_least_every))
    return remember();
  if (p.at_most_every.count() > 0 && r.time - it->time < p.at_most_every) return false;
  if (p.on == report_policy::mode::every_poll || moved(p, it->value, r.value)) return remember();
  return false;
}

std::size_t report_filter::points() const {
  std::size_t n = 0;
  for (const auto& [device, points] : last_) n += points.size();
  return n;
}

}  // namespace firegate
