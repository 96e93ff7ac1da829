#pragma once
// Readings for the store's tests, shared by tests/integration/test_store*.cpp.

#include "domain/reading.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace firegate::test {

/// `polls` SD-1 polls of one device, a second apart from `start`: four readings each.
inline std::vector<reading> polls_of(const std::string& device, int polls, clock::time_point start) {
  std::vector<reading> out;
  for (int p = 0; p < polls; ++p) {
    const auto t = start + std::chrono::seconds(p);
    out.push_back({device, "state", 0, "", quality::good, t});
    out.push_back({device, "smoke", 0.02 * p, "dB/m", quality::good, t});
    out.push_back({device, "temperature", 21.5, "°C", quality::good, t});
    out.push_back({device, "supply_voltage", 24.0, "V", quality::good, t});
  }
  return out;
}

}  // namespace firegate::test
