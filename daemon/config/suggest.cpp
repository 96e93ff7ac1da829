#include "suggest.hpp"

#include "config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>

namespace firegate::config {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: three rows of the dynamic-programming table.
  std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  std::iota(previous.begin(), previous.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::optional<std::string> closest(std::string_view typed, const std::vector<std::string>& candidates) {
  // Short names tolerate one slip, longer ones up to three.
  const std::size_t limit = typed.size() <= 4 ? 1 : typed.size() <= 8 ? 2 : 3;
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const auto d = edit_distance(typed, c);
    if (d < best_distance && d < typed.size()) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates) {
  auto c = closest(typed, candidates);
  return c ? " did you mean \"" + *c + "\"?" : std::string();
}

std::string unknown_device(const gateway_file& cfg, std::string_view name) {
  // Devices are checked where the configuration is known: the alarm engine takes any name.
  if (find_device(cfg, name) != nullptr) return {};
  std::vector<std::string> names;
  names.reserve(cfg.devices.size());
  for (const auto& d : cfg.devices) names.push_back(d.name);
  return fmt::format("no device \"{}\" on this gateway;{} its devices: {}", name, did_you_mean(name, names),
                     fmt::join(names, ", "));
}

}  // namespace firegate::config
