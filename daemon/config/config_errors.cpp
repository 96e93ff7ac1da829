#include "config_errors.hpp"

#include <algorithm>
#include <tuple>

namespace firegate::config {

void config_errors::add(std::uint32_t line, std::string path, std::string message) {
  items_.push_back({file_, line, std::move(path), std::move(message)});
}

void config_errors::add_root_cause(std::uint32_t line, std::string path, std::string message) {
  items_.push_back({file_, line, std::move(path), std::move(message), true});
}

std::vector<std::string> config_errors::lines(std::string_view file) const {
  auto sorted = items_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const config_error& a, const config_error& b) {
    return std::tie(b.root_cause, a.file, a.line) < std::tie(a.root_cause, b.file, b.line);
  });
  std::vector<std::string> out;
  for (const auto& e : sorted) {
    std::string line(e.file.empty() ? file : std::string_view(e.file));
    if (e.line != 0) line.append(":").append(std::to_string(e.line));
    line.append(" ").append(e.path).append(": ").append(e.message);
    out.push_back(std::move(line));
  }
  return out;
}

std::string config_errors::format(std::string_view file) const {
  std::string out;
  for (const auto& line : lines(file)) out.append(line).append("\n");
  return out;
}

}  // namespace firegate::config
