#pragma once
// The simulator's log: one line an event on standard output, timestamped to the microsecond, since
// benchmarks measure latency from these lines to a subscriber's receipt.

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <string_view>

namespace firegate::sim {

inline void log_line(std::string_view text) {
  const auto now = std::chrono::system_clock::now();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::cout << fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06}Z sim {}\n",
                           fmt::gmtime(std::chrono::system_clock::to_time_t(now)), us % 1000000, text)
            << std::flush;
}

}  // namespace firegate::sim
