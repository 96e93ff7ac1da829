// firegate.toml(5) kept in step with the loader. The loader knows its keys only by reading them, so
// the test asks it: an unknown key put into each table of tests/data/firegate-all-keys.toml (every
// key set) is refused with "known keys here: ...", and that list must be the keys the manual gives
// under the table's section, no more and no fewer. A key added to the loader without its line in the
// manual, or a key the manual keeps after the loader dropped it, fails here.

#include "config/config_loader.hpp"
#include "driver.hpp"
#include "support.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace firegate;

namespace {

using key_set = std::set<std::string>;

/// The manual's sections (.SS TITLE) and the keys under each (.BI "KEY = " TYPE).
std::map<std::string, key_set> manual_keys(const std::string& roff) {
  std::map<std::string, key_set> out;
  std::istringstream in(roff);
  std::string line, section;
  const std::regex key(R"re(^\.BI "([a-z0-9_]+) = ")re");
  bool in_keys = false;
  while (std::getline(in, line)) {
    if (line.starts_with(".SH")) in_keys = false;
    if (line.starts_with(".SS ")) {
      section = line.substr(4);
      in_keys = true;
      out[section];
    }
    std::smatch m;
    if (in_keys && std::regex_search(line, m, key)) out[section].insert(m[1]);
  }
  return out;
}

/// Where each section's table is in the all-keys file: its header and which occurrences of it.
struct place {
  std::string header;
  std::vector<int> occurrences;  ///< empty: every one
};

place place_of(const std::string& section) {
  if (section == "[[buses]] modbus_tcp") return {"[[buses]]", {0}};
  if (section == "[[buses]] modbus_rtu") return {"[[buses]]", {1}};
  if (section == "[[buses]] mqtt") return {"[[buses]]", {2}};
  if (section == "[[devices]] modbus") return {"[[devices]]", {0, 1, 2, 3}};
  if (section == "[[devices]] mqtt") return {"[[devices]]", {4, 5}};
  if (section == "[devices.rules.RULE]") return {"[devices.rules.", {}};     // every rule's table
  if (section == "[devices.report.POINT]") return {"[devices.report.", {}};  // every point's table
  return {section, {}};
}

/// The keys the loader knows in the table at the `nth` `header` of `text`: it is given an unknown key
/// there and names the known ones. Keys whose values are tables there (they have sections of their
/// own) go to `tables`.
key_set loader_keys(const std::string& text, const std::string& file, const std::string& header, int nth,
                    key_set& tables) {
  std::size_t at = std::string::npos;
  for (int i = 0, from = 0; i <= nth; ++i, from = static_cast<int>(at) + 1) {
    at = text.find("\n" + header, static_cast<std::size_t>(from));
    if (at == std::string::npos) return {};
  }
  const auto eol = text.find('\n', at + 1);
  const auto probed = text.substr(0, eol + 1) + "zz_not_a_key = 1\n" + text.substr(eol + 1);
  const auto result = config::load_config_text(probed, file, driver_parsers());
  for (const auto& e : result.errors.items()) {
    if (!e.path.ends_with("zz_not_a_key")) continue;
    const auto list = e.message.substr(e.message.find("known keys here: ") + 17);
    const auto table_path = e.path.substr(0, e.path.size() - std::string(".zz_not_a_key").size());
    const auto root = toml::parse(probed, file);
    const auto* table = root.at_path(table_path).as_table();
    key_set keys;
    std::istringstream names(list);
    std::string name;
    while (std::getline(names, name, ',')) {
      name.erase(0, name.find_first_not_of(' '));
      if (table && table->get(name) && table->get(name)->is_table()) tables.insert(name);
      keys.insert(name);
    }
    return keys;
  }
  return {};
}

}  // namespace

TEST_CASE("firegate.toml(5) - every table's keys are the loader's, no more and no fewer") {
  const auto file = test::source_dir() + "/tests/data/firegate-all-keys.toml";
  const auto text = "\n" + test::read_text(file);
  const auto manual = manual_keys(test::read_text(test::source_dir() + "/daemon/config/firegate.toml.5"));
  REQUIRE(manual.size() >= 19);  // one a table, buses and devices one a driver

  std::set<std::string> headers_covered;
  for (const auto& [section, documented] : manual) {
    INFO("manual section " << section);
    const auto where = place_of(section);
    std::vector<int> nth = where.occurrences;
    if (nth.empty()) {
      for (std::size_t at = text.find("\n" + where.header); at != std::string::npos;
           at = text.find("\n" + where.header, at + 1))
        nth.push_back(static_cast<int>(nth.size()));
    }
    REQUIRE_FALSE(nth.empty());  // the all-keys file has this table
    key_set known, tables;
    for (int i : nth) {
      const auto keys = loader_keys(text, file, where.header, i, tables);
      REQUIRE_FALSE(keys.empty());  // the loader refused the probe and named its keys
      known.insert(keys.begin(), keys.end());
    }
    for (const auto& t : tables) known.erase(t);
    key_set undocumented, unknown;
    std::set_difference(known.begin(), known.end(), documented.begin(), documented.end(),
                        std::inserter(undocumented, undocumented.end()));
    std::set_difference(documented.begin(), documented.end(), known.begin(), known.end(),
                        std::inserter(unknown, unknown.end()));
    INFO("the loader reads, the manual does not give: " << fmt::format("{}", fmt::join(undocumented, ", ")));
    INFO("the manual gives, the loader does not know: " << fmt::format("{}", fmt::join(unknown, ", ")));
    CHECK(undocumented.empty());
    CHECK(unknown.empty());
    headers_covered.insert(where.header);
  }

  // Every table of the all-keys file has its section in the manual.
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("[")) continue;
    const auto header = line.substr(0, line.find(']') + (line.starts_with("[[") ? 2 : 1));
    INFO("table " << header << " of the all-keys file");
    CHECK(std::any_of(headers_covered.begin(), headers_covered.end(),
                      [&](const std::string& h) { return header.starts_with(h); }));
  }
}
