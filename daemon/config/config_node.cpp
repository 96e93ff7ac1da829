#include "config_node.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "suggest.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace firegate::config {
namespace {

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "true/false";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date/time";
  }
}

std::string join(const auto& items) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ", ";
    out += i;
  }
  return out;
}

}  // namespace

config_node::config_node(const toml::table& table, std::string path, config_errors& errors)
    : table_(&table), path_(std::move(path)), errors_(&errors) {}

std::string config_node::child_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

const toml::node* config_node::lookup(std::string_view key) {
  read_.emplace(key);
  return table_->get(key);
}

std::uint32_t config_node::line_of(std::string_view key) const {
  if (const auto* n = table_->get(key)) return n->source().begin.line;
  return line();
}

void config_node::error(std::string_view key, std::string message) {
  errors_->add(line_of(key), child_path(key), std::move(message));
}

void config_node::error(std::string message) {
  errors_->add(line(), path_, std::move(message));
}

void config_node::type_error(std::string_view key, std::string_view expected, const toml::node& found) {
  error(key, fmt::format("expected {}, found {}", expected, type_name(found)));
}

std::optional<std::string> config_node::get_string(std::string_view key, presence p, std::string_view hint) {
  const auto* n = lookup(key);
  if (n == nullptr) {
    if (p == presence::required) {
      error(key,
            hint.empty() ? std::string("missing; this key is required") : fmt::format("missing; {}", hint));
    }
    return std::nullopt;
  }
  if (const auto* s = n->as_string()) {
    if (p == presence::required && s->get().empty()) {
      error(key,
            hint.empty() ? std::string("is empty; this key is required") : fmt::format("is empty; {}", hint));
      return std::nullopt;
    }
    return s->get();
  }
  type_error(key, "a string", *n);
  return std::nullopt;
}

std::string config_node::get_string_or(std::string_view key, std::string fallback) {
  return get_string(key, presence::optional).value_or(std::move(fallback));
}

std::optional<std::string> config_node::get_enum(std::string_view key, presence p,
                                                 const std::vector<std::string>& allowed) {
  auto value = get_string(key, p, fmt::format("use one of: {}", join(allowed)));
  if (!value) return std::nullopt;
  for (const auto& a : allowed) {
    if (a == *value) return value;
  }
  error(key, fmt::format("\"{}\" is not known;{} use one of: {}", *value, did_you_mean(*value, allowed),
                         join(allowed)));
  return std::nullopt;
}

std::optional<std::string> config_node::get_enum_or(std::string_view key,
                                                    const std::vector<std::string>& allowed,
                                                    std::string fallback) {
  if (lookup(key) == nullptr) return fallback;
  return get_enum(key, presence::optional, allowed);
}

std::optional<std::int64_t> config_node::get_integer(std::string_view key, std::int64_t min, std::int64_t max,
                                                     std::optional<std::int64_t> fallback) {
  const auto* n = lookup(key);
  if (n == nullptr) {
    if (!fallback) error(key, fmt::format("missing; set an integer in {}–{}", min, max));
    return fallback;
  }
  const auto* i = n->as_integer();
  if (i == nullptr) {
    type_error(key, "an integer", *n);
    return std::nullopt;
  }
  if (i->get() < min || i->get() > max) {
    error(key, fmt::format("{} is outside {}–{}", i->get(), min, max));
    return std::nullopt;
  }
  return i->get();
}

std::optional<double> config_node::get_number(std::string_view key, double min, double max,
                                              std::optional<double> fallback) {
  const auto* n = lookup(key);
  if (n == nullptr) {
    if (!fallback) error(key, fmt::format("missing; set a number in {}–{}", min, max));
    return fallback;
  }
  std::optional<double> value;
  if (const auto* f = n->as_floating_point()) value = f->get();
  if (const auto* i = n->as_integer()) value = static_cast<double>(i->get());
  if (!value) {
    type_error(key, "a number", *n);
    return std::nullopt;
  }
  if (*value < min || *value > max) {
    error(key, fmt::format("{} is outside {}–{}", *value, min, max));
    return std::nullopt;
  }
  return value;
}

bool config_node::get_bool(std::string_view key, bool fallback) {
  const auto* n = lookup(key);
  if (n == nullptr) return fallback;
  if (const auto* b = n->as_boolean()) return b->get();
  type_error(key, "true or false", *n);
  return fallback;
}

std::vector<std::int64_t> config_node::get_integer_array(std::string_view key) {
  std::vector<std::int64_t> out;
  const auto* n = lookup(key);
  if (n == nullptr) return out;
  const auto* a = n->as_array();
  if (a == nullptr) {
    type_error(key, "an array of integers", *n);
    return out;
  }
  for (const auto& element : *a) {
    if (const auto* i = element.as_integer()) {
      out.push_back(i->get());
    } else {
      error(key, fmt::format("expected integers only, found {}", type_name(element)));
      return {};
    }
  }
  return out;
}

std::vector<std::string> config_node::get_string_array(std::string_view key) {
  std::vector<std::string> out;
  const auto* n = lookup(key);
  if (n == nullptr) return out;
  const auto* a = n->as_array();
  if (a == nullptr) {
    type_error(key, "an array of strings", *n);
    return out;
  }
  for (const auto& element : *a) {
    if (const auto* s = element.as_string()) {
      out.push_back(s->get());
    } else {
      error(key, fmt::format("expected strings only, found {}", type_name(element)));
      return {};
    }
  }
  return out;
}

std::vector<std::string> config_node::keys() const {
  std::vector<std::string> out;
  for (const auto& [key, value] : *table_) out.emplace_back(key.str());
  return out;
}

std::optional<config_node> config_node::get_table(std::string_view key, presence p) {
  const auto* n = lookup(key);
  if (n == nullptr) {
    if (p == presence::required) error(key, fmt::format("missing; add a [{}] table", child_path(key)));
    return std::nullopt;
  }
  if (const auto* t = n->as_table()) return config_node(*t, child_path(key), *errors_);
  type_error(key, "a table", *n);
  return std::nullopt;
}

std::vector<config_node> config_node::get_table_array(std::string_view key) {
  std::vector<config_node> out;
  const auto* n = lookup(key);
  if (n == nullptr) return out;
  const auto* a = n->as_array();
  if (a == nullptr) {
    type_error(key, fmt::format("an array of tables ([[{}]])", key), *n);
    return out;
  }
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto& element = *a->get(i);
    const auto path = fmt::format("{}[{}]", child_path(key), i);
    if (const auto* t = element.as_table()) {
      out.emplace_back(*t, path, *errors_);
    } else {
      errors_->add(element.source().begin.line, path,
                   fmt::format("expected a table, found {}", type_name(element)));
    }
  }
  return out;
}

std::size_t config_node::error_count() const {
  return errors_->size();
}

void config_node::finish() {
  std::vector<std::string> known(read_.begin(), read_.end());
  for (const auto& [key, value] : *table_) {
    if (read_.contains(key.str())) continue;
    errors_->add(
        value.source().begin.line, child_path(key.str()),
        fmt::format("unknown key;{} known keys here: {}", did_you_mean(key.str(), known), join(known)));
  }
}

bool get_labels(config_node& n, std::map<std::int64_t, std::string>& out) {
  auto labels = n.get_table("labels", presence::optional);
  if (!labels) return !n.contains("labels");  // absent is fine; present but not a table was reported
  bool ok = true;
  for (const auto& key : labels->keys()) {
    auto text = labels->get_string(key, presence::required, "give the meaning of this value");
    std::int64_t raw = 0;
    const auto* end = key.data() + key.size();
    if (std::from_chars(key.data(), end, raw).ptr != end) {
      labels->error(key, "a label's key must be the integer value it names, such as 1 = \"fire\"");
      ok = false;
    } else if (text) {
      out.emplace(raw, *text);
    } else {
      ok = false;
    }
  }
  labels->finish();
  return ok;
}

void report_devices_without_profiles(config_node& bus, std::vector<std::string> devices,
                                     const std::string& folder) {
  if (devices.empty()) return;
  const auto n = devices.size();
  if (n > 5) devices.resize(5);
  bus.error("driver",
            fmt::format("… {} device{} on this bus ({}{}) name profiles from {}, where none were "
                        "loaded: fix that folder first (the error above)",
                        n, n == 1 ? "" : "s", fmt::join(devices, ", "), n > 5 ? ", …" : "", folder));
}

void for_each_profile_folder(const std::vector<std::filesystem::path>& folders, config_errors& errors,
                             std::string_view what,
                             const std::function<void(const std::filesystem::path&)>& each) {
  bool any = false;
  for (auto it = folders.rbegin(); it != folders.rend(); ++it) {
    std::error_code ec;
    if (!std::filesystem::is_directory(*it, ec)) continue;
    any = true;
    each(*it);
  }
  if (!any && !folders.empty()) {
    errors.set_file(folders.front().string());
    errors.add_root_cause(
        0, "(profiles)",
        folders.size() == 1
            ? fmt::format("no such folder; set [profiles] dir to the folder that holds {}", what)
            : fmt::format("no such folder, nor {}; set [profiles] dir (site profiles) or [profiles] shipped "
                          "to the folder that holds {}",
                          profile_folders_text({folders.begin() + 1, folders.end()}), what));
    errors.set_file({});
  }
}

std::string profile_folders_text(const std::vector<std::filesystem::path>& folders) {
  std::vector<std::string> names;
  for (const auto& f : folders) names.push_back(f.string());
  return fmt::format("{}", fmt::join(names, " or "));
}

void for_each_toml(const std::filesystem::path& dir, config_errors& errors, std::string_view what,
                   const std::function<void(config_node&)>& each) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    errors.set_file(dir.string());
    errors.add_root_cause(
        0, "(profiles)", fmt::format("no such folder; set [profiles] dir to the folder that holds {}", what));
    errors.set_file({});
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    errors.set_file(file.string());
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    try {
      const auto root = toml::parse(text.str(), file.string());
      config_node node(root, "", errors);
      each(node);
    } catch (const toml::parse_error& e) {
      errors.add(
          e.source().begin.line, "(syntax)",
          fmt::format("{}; fix the TOML syntax at column {}", e.description(), e.source().begin.column));
    }
  }
  errors.set_file({});
}

}  // namespace firegate::config
