#pragma once
// A latency histogram as the metrics give it (docs/metrics.md): counts by fixed upper bounds, their
// sum and count. Plain data, kept where the time is measured (the pipeline's stages in the
// application, an uplink's acknowledgements); the application turns it into Prometheus's histogram.
// Not thread-safe: each is observed and read on the loop.

#include <array>
#include <chrono>
#include <cstdint>

namespace firegate {

struct latency_histogram {
  /// Upper bounds in seconds: from a loopback round trip to a minute-long outage, about a factor
  /// of 2.5 apart (an alarm's path is tens of milliseconds; a slow 4G link seconds).
  static constexpr std::array<double, 14> bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 60.0};
  /// counts[i]: observations ≤ bounds[i] and above the bound before (not cumulative); the last
  /// counts those above every bound (+Inf).
  std::array<std::uint64_t, bounds.size() + 1> counts{};
  double sum{0};  ///< seconds
  std::uint64_t count{0};

  /// A negative time (the wall clock stepped back between the two ends) counts as 0.
  void observe(std::chrono::duration<double> took) {
    const double s = took.count() > 0 ? took.count() : 0.0;
    std::size_t i = 0;
    while (i < bounds.size() && s > bounds[i]) ++i;
    ++counts[i];
    sum += s;
    ++count;
  }
};

}  // namespace firegate
