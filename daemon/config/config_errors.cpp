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

std::string config_errors::format(std::string_view file) const {
  auto sorted = items_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const config_error& a, const config_error& b) {
    return std::tie(b.root_cause, a.file, a.line) < std::tie(a.root_cause, b.file, b.line);
  });
  std::string out;
  for (const auto& e : sorted) {
    out.append(e.file.empty() ? file : std::string_view(e.file));
    if (e.line != 0) out.append(":").append(std::to_string(e.line));
    out.append(" ").append(e.path).append(": ").append(e.message).append("\n");
  }
  return out;
}

}  // namespace firegate::config
