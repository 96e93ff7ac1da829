#include "config_patch.hpp"

#include "suggest.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace firegate::config {

namespace {

// Ordered, so that the members of "set" apply in the order the integrator wrote them.
using json = nlohmann::ordered_json;

// Thrown inside this file only: apply_patch turns it into patch_result::error.
struct patch_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw patch_error(fmt::format(f, std::forward<Args>(args)...));
}

// The arrays of tables a patch may add to: the ones the configuration loader reads.
const std::vector<std::string> addable{"buses", "devices", "linkage"};

// Deeper than any site file; the limit keeps a hostile patch from exhausting the stack.
constexpr int max_depth = 64;

std::string kind(const json& j) {
  if (j.is_null()) return "null";
  if (j.is_number()) return "a number";
  return fmt::format("{} {}", j.is_array() || j.is_object() ? "an" : "a", j.type_name());
}

std::string describe(const toml::node& n) {
  if (n.is_table()) return "a table";
  if (n.is_array()) return n.is_array_of_tables() ? "an array of tables" : "an array of values";
  // The type only, never the value: it may be a password, and refusals are published and logged.
  std::ostringstream type;
  type << n.type();
  return fmt::format("{} {}", type.str()[0] == 'i' ? "an" : "a", type.str());
}

const toml::value<std::string>* name_of(const toml::node& n) {
  const auto* t = n.as_table();
  return t != nullptr ? t->get_as<std::string>("name") : nullptr;
}

std::optional<std::size_t> element(const toml::array& a, std::string_view name) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (const auto* n = name_of(a[i]); n != nullptr && n->get() == name) return i;
  return std::nullopt;
}

toml::node* child(toml::node& at, std::string_view segment) {
  if (auto* t = at.as_table()) return t->get(segment);
  auto* a = at.as_array();
  const auto i = a != nullptr ? element(*a, segment) : std::nullopt;
  return i ? &(*a)[*i] : nullptr;
}

// A path on its way through the site file: `lead` opens each error, e.g. `set "devices.smoke-3.unit_id"`.
struct path {
  std::string lead;
  std::vector<std::string> segs;

  path(std::string_view op, std::string_view text) : lead(fmt::format("{} \"{}\"", op, text)) {
    for (std::size_t from = 0;;) {
      const auto dot = std::min(text.find('.', from), text.size());
      segs.emplace_back(text.substr(from, dot - from));
      if (segs.back().empty()) fail("{}: the path has an empty segment (a dot at an end, or two dots)", lead);
      if (dot == text.size()) return;
      from = dot + 1;
    }
  }
  std::string first(std::size_t n) const {
    return n == 0 ? "the site file"
                  : fmt::format("{}",
                                fmt::join(segs.begin(), segs.begin() + static_cast<std::ptrdiff_t>(n), "."));
  }
  // The index of the element of the array `at` that the last segment names.
  std::ptrdiff_t last_element(const toml::node& at) const {
    const auto i = element(*at.as_array(), segs.back());
    if (!i) missing(segs.size() - 1, at);
    return static_cast<std::ptrdiff_t>(*i);
  }
  // Names the keys, or the names of the elements, that segment `i` could have been.
  [[noreturn]] void missing(std::size_t i, const toml::node& at) const {
    std::vector<std::string> names;
    if (const auto* t = at.as_table())
      for (const auto& [k, v] : *t) names.emplace_back(k.str());
    if (const auto* a = at.as_array())
      for (const auto& e : *a)
        if (const auto* n = name_of(e)) names.push_back(n->get());
    if (at.is_array() && names.empty() && !at.as_array()->empty())
      fail("{}: {} is {}, whose elements have no names", lead, first(i), describe(at));
    fail("{}: {} has no {} \"{}\";{} {}", lead, first(i), at.is_table() ? "key" : "element named", segs[i],
         did_you_mean(segs[i], names),
         names.empty() ? std::string("it is empty") : fmt::format("it has: {}", fmt::join(names, ", ")));
  }
};

// The table or array that holds the path's last segment. "set" creates the tables missing on the way,
// as a person adding [metrics] by hand would; an array element is never created by a path, only by "add".
toml::node& holder(toml::table& root, const path& p, bool create) {
  toml::node* at = &root;
  for (std::size_t i = 0; i + 1 < p.segs.size(); ++i) {
    toml::node* next = child(*at, p.segs[i]);
    if (next == nullptr && create && at->is_table())
      next = &at->as_table()->insert(p.segs[i], toml::table{}).first->second;
    if (next == nullptr) p.missing(i, *at);
    if (!next->is_table() && !next->is_array())
      fail("{}: {} is {}, which has no keys", p.lead, p.first(i + 1), describe(*next));
    at = next;
  }
  return *at;
}

std::unique_ptr<toml::node> to_toml(const json& j, std::string_view where, int depth = 0) {
  using t = json::value_t;
  if (depth > max_depth) fail("{}: the value is nested deeper than {} levels", where, max_depth);
  if (j.type() == t::string) return std::make_unique<toml::value<std::string>>(j.get<std::string>());
  if (j.type() == t::boolean) return std::make_unique<toml::value<bool>>(j.get<bool>());
  if (j.type() == t::number_float) return std::make_unique<toml::value<double>>(j.get<double>());
  if (j.type() == t::number_unsigned && j.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    fail("{}: {} is too large for a TOML integer", where, j.get<uint64_t>());
  if (j.is_number()) return std::make_unique<toml::value<int64_t>>(j.get<int64_t>());
  if (j.is_array()) {
    auto a = std::make_unique<toml::array>();
    for (const auto& e : j) a->push_back(std::move(*to_toml(e, where, depth + 1)));
    return a;
  }
  if (j.is_object()) {
    auto o = std::make_unique<toml::table>();
    for (const auto& [k, v] : j.items()) o->insert_or_assign(k, std::move(*to_toml(v, where, depth + 1)));
    return o;
  }
  fail("{}: the value holds a null, which TOML cannot write; leave the key out", where);
}

void add(toml::table& root, const json& lists) {
  if (!lists.is_object())
    fail("\"add\" must be an object like {{\"devices\": [{{...}}]}}, not {}", kind(lists));
  for (const auto& [list, elements] : lists.items()) {
    if (std::find(addable.begin(), addable.end(), list) == addable.end())
      fail("add: the site file has no list \"{}\";{} it may add to: {}", list, did_you_mean(list, addable),
           fmt::join(addable, ", "));
    if (!elements.is_array()) fail("add.{} must be an array of objects, not {}", list, kind(elements));
    if (elements.empty()) continue;
    auto* existing = root.get(list);
    if (existing == nullptr) existing = &root.insert(list, toml::array{}).first->second;
    auto* a = existing->as_array();
    if (a == nullptr || !std::all_of(a->begin(), a->end(), [](const toml::node& e) { return e.is_table(); }))
      fail("add.{}: the site file's {} is {}, not an array of tables", list, list, describe(*existing));
    for (std::size_t i = 0; i < elements.size(); ++i) {
      const auto& e = elements[i];
      const auto where = fmt::format("add.{}[{}]", list, i);
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
        fail("{} must be an object with a string \"name\"", where);
      if (element(*a, e["name"].get<std::string>()))
        fail("{}: {} already has an element named \"{}\"", where, list, e["name"].get<std::string>());
      a->push_back(std::move(*to_toml(e, where)));
    }
  }
}

void set(toml::table& root, const json& paths) {
  if (!paths.is_object()) fail("\"set\" must be an object of \"dotted.path\": value, not {}", kind(paths));
  for (const auto& [text, value] : paths.items()) {
    const path p("set", text);
    if (value.is_null()) fail("{}: null is not a TOML value; use \"remove\" to delete a key", p.lead);
    auto& at = holder(root, p, true);
    auto node = to_toml(value, p.lead);
    if (auto* t = at.as_table()) {
      t->insert_or_assign(p.segs.back(), std::move(*node));
      continue;
    }
    const auto i = p.last_element(at);
    if (!node->is_table()) fail("{}: an element of {} must be an object", p.lead, p.first(p.segs.size() - 1));
    at.as_array()->replace(at.as_array()->cbegin() + i, std::move(*node));
  }
}

void remove(toml::table& root, const json& paths) {
  if (!paths.is_array()) fail("\"remove\" must be an array of \"dotted.path\" strings, not {}", kind(paths));
  for (std::size_t n = 0; n < paths.size(); ++n) {
    if (!paths[n].is_string()) fail("remove[{}] must be a \"dotted.path\" string, not {}", n, kind(paths[n]));
    const path p("remove", paths[n].get<std::string>());
    auto& at = holder(root, p, false);
    if (auto* t = at.as_table()) {
      if (!t->contains(p.segs.back())) p.missing(p.segs.size() - 1, at);
      t->erase(p.segs.back());
      continue;
    }
    at.as_array()->erase(at.as_array()->cbegin() + p.last_element(at));
  }
}

// People read the written file, so floats are written short (0.1, not 0.10000000000000001) unless that
// would change one of them; reading the text back also catches what toml++ writes but cannot read.
std::string written(const toml::table& root) {
  for (const bool relaxed : {true, false}) {
    // Flat like the shipped example file: sub-tables are not indented under their parents.
    auto flags = toml::toml_formatter::default_flags & ~toml::format_flags::indent_sub_tables;
    if (relaxed) flags |= toml::format_flags::relaxed_float_precision;
    std::ostringstream out;
    out << toml::toml_formatter{root, flags};
    toml::table again;
    try {
      again = toml::parse(out.str());
    } catch (const toml::parse_error& e) {
      std::istringstream lines(out.str());
      std::string line;
      for (auto n = e.source().begin.line; n > 0 && std::getline(lines, line); --n) {
      }
      fail(
          "the patched site file would not be valid TOML: {} at line {} (\"{}\"); check the patch's keys for "
          "control characters",
          e.description(), e.source().begin.line, line);
    }
    if (again == root) return out.str();
  }
  fail("the patched site file would not read back as written");
}

}  // namespace

patch_result apply_patch(std::string_view site_text, std::string_view patch_json) {
  toml::table root;
  try {
    root = toml::parse(site_text);
  } catch (const toml::parse_error& e) {
    return {std::nullopt, fmt::format("the site file is not valid TOML: {} at line {}, column {}",
                                      e.description(), e.source().begin.line, e.source().begin.column)};
  }
  try {
    json patch;
    try {
      patch = json::parse(patch_json);
    } catch (const json::exception& e) {
      // nlohmann's "[json.exception.parse_error.101] " prefix means nothing to an integrator.
      const std::string what = e.what();
      fail("the patch is not JSON: {}", what.substr(what.find("] ") + 2));
    }
    if (!patch.is_object())
      fail("the patch must be a JSON object with \"add\", \"set\" or \"remove\", not {}", kind(patch));
    const std::vector<std::string> members{"add", "set", "remove"};
    for (const auto& [member, value] : patch.items())
      if (std::find(members.begin(), members.end(), member) == members.end())
        fail("the patch has an unknown member \"{}\";{} it may have: add, set, remove", member,
             did_you_mean(member, members));
    if (patch.contains("add")) add(root, patch["add"]);
    if (patch.contains("set")) set(root, patch["set"]);
    if (patch.contains("remove")) remove(root, patch["remove"]);
    return {written(root), {}};
  } catch (const std::exception& e) {
    return {std::nullopt, e.what()};
  }
}

namespace {

// Deep equality of two nodes, either of which may be absent.
bool same(const toml::node* x, const toml::node* y) {
  return toml::node_view<const toml::node>{x} == toml::node_view<const toml::node>{y};
}

// An array whose elements are all tables with a string `name` (absent counts: every element added).
bool named(const toml::node* n) {
  const auto* a = n != nullptr ? n->as_array() : nullptr;
  return n == nullptr ||
         (a && std::all_of(a->begin(), a->end(), [](const toml::node& e) { return name_of(e); }));
}

std::string element_changes(const toml::node* before, const toml::node* after) {
  static const toml::array none;
  const auto& old = before != nullptr ? *before->as_array() : none;
  const auto& now = after != nullptr ? *after->as_array() : none;
  std::string out;
  for (const auto& e : now) {
    const auto& name = name_of(e)->get();
    const auto i = element(old, name);
    if (!i)
      out += " +" + name;
    else if (!same(&old[*i], &e))
      out += " ~" + name;
  }
  for (const auto& e : old)
    if (!element(now, name_of(e)->get())) out += " -" + name_of(e)->get();
  return out;
}

}  // namespace

std::vector<std::string> added_or_changed(std::string_view before, std::string_view after,
                                          std::string_view list) {
  std::vector<std::string> out;
  toml::table a, b;
  try {
    a = toml::parse(before);
    b = toml::parse(after);
  } catch (const toml::parse_error&) {
    return out;
  }
  const auto* ya = a.get_as<toml::array>(list);
  const auto* yb = b.get_as<toml::array>(list);
  if (yb == nullptr) return out;
  for (const auto& entry : *yb) {
    const auto* name = name_of(entry);
    if (name == nullptr) continue;
    const toml::node* old = nullptr;
    if (ya != nullptr) {
      for (const auto& e : *ya) {
        if (const auto* n = name_of(e); n != nullptr && n->get() == name->get()) old = &e;
      }
    }
    if (old == nullptr || !same(old, &entry)) out.push_back(name->get());
  }
  return out;
}

std::string diff_summary(std::string_view before, std::string_view after) {
  toml::table a, b;
  try {
    a = toml::parse(before);
    b = toml::parse(after);
  } catch (const toml::parse_error&) {
    return "the file was rewritten";
  }
  if (a == b) return "no change";
  std::set<std::string> keys, changed;
  for (const auto* t : {&a, &b})
    for (const auto& [k, v] : *t) keys.emplace(k.str());
  // Devices first: they change most often and matter most to the people reading this.
  std::vector<std::string> lists;
  std::vector<std::string> order{"devices", "buses", "linkage"};
  for (const auto& k : keys)
    if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
  for (const auto& k : order) {
    const toml::node* x = a.get(k);
    const toml::node* y = b.get(k);
    if (same(x, y)) continue;
    if (named(x) && named(y)) {
      if (auto items = element_changes(x, y); !items.empty()) {
        lists.push_back(k + items);
        continue;
      }
    } else if ((x == nullptr || x->is_table()) && (y == nullptr || y->is_table())) {
      // One level down for tables of tables, so that "uplink.mqtt" says more than "uplink".
      static const toml::table none;
      const auto& tx = x != nullptr ? *x->as_table() : none;
      const auto& ty = y != nullptr ? *y->as_table() : none;
      const auto before_size = changed.size();
      for (const auto* t : {&tx, &ty})
        for (const auto& [sub, v] : *t) {
          const auto* sx = tx.get(sub);
          const auto* sy = ty.get(sub);
          if (same(sx, sy)) continue;
          const bool table = (sx != nullptr && sx->is_table()) || (sy != nullptr && sy->is_table());
          changed.insert(table ? fmt::format("{}.{}", k, sub.str()) : k);
        }
      if (changed.size() > before_size) continue;
    }
    changed.insert(k);  // a value, a type changed, or only an order of elements
  }
  if (!changed.empty()) lists.push_back(fmt::format("changed {}", fmt::join(changed, ", ")));
  return fmt::format("{}", fmt::join(lists, "; "));
}

}  // namespace firegate::config
