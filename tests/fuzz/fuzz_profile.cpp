// libFuzzer target: device profile files, as the daemon, firegate-sim and firegatectl load them
// (load_profiles for config/profiles/modbus/*.toml, load_ingest_profiles for mqtt/*.toml, both
// through config::for_each_toml: the file read, the TOML parse, its syntax errors caught). The first
// byte chooses Modbus (even) or MQTT (odd); the rest is the file, written to a folder of its own.
// fuzz_mqtt_mapping covers the decoding of messages by two fixed profiles; this covers the files.
// Checked:
//  - no exception escapes, no crash, no hang;
//  - the file gives its profile or at least one error, and errors only with text (line, path and a
//    message); never a profile with errors other than keys it does not know (see below);
//  - loading the file and parsing the same text in memory agree (profile or not, the errors);
//  - a Modbus profile that loads has read plans that cover each point exactly once, within one
//    request's limits, gapless plans without gaps, and the alarm plans only alarm points;
//  - an MQTT profile that loads has points, a device id source, a subscription filter that parses
//    back, and decodes a message without trouble.
//
// Found and fixed: parse_profile and parse_ingest_profile recorded unknown keys without failing, so a
// file with an unknown key gave a profile and an error, although their headers say nullopt when there
// are errors (the seed unknown-key). Now a profile or errors, never both.

#include "modbus/profile.hpp"
#include "mqtt/mapping.hpp"

#include <toml++/toml.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>

namespace fs = std::filesystem;
using namespace firegate;

namespace {

/// A folder of its own for the run, removed at exit (never destroyed before that).
const fs::path& folder() {
  static const fs::path* const dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "fuzz_profile.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    return new fs::path(tmpl);
  }();
  static const bool cleanup = std::atexit([] {
                                std::error_code ec;
                                fs::remove_all(*dir, ec);
                              }) == 0;
  (void)cleanup;
  return *dir;
}

void check_errors(const config::config_errors& errors) {
  for (const auto& e : errors.items()) {
    if (e.message.empty() || e.path.empty()) std::abort();
  }
  if (!errors.empty() && errors.format("fuzz.toml").empty()) std::abort();
}

void check_plan(const modbus::device_profile& p, const std::vector<modbus::read_block>& blocks,
                std::optional<modbus::point_group> only, bool gapless) {
  std::vector<int> covered(p.points.size(), 0);
  for (const auto& b : blocks) {
    if (b.points.empty()) std::abort();
    const bool bits = modbus::is_bit_read(b.request.function);
    const std::uint32_t limit = bits ? modbus::max_read_bits : modbus::max_read_registers;
    if (b.request.count == 0 || b.request.count > limit) std::abort();
    if (std::uint32_t{b.request.address} + b.request.count > 65536) std::abort();
    if (gapless && b.spans_gap) std::abort();
    for (auto i : b.points) {
      if (i >= p.points.size()) std::abort();
      const auto& point = p.points[i];
      if (only && point.group != *only) std::abort();
      if (modbus::read_function(point.table) != b.request.function) std::abort();
      if (point.address < b.request.address || std::uint32_t{point.address} + modbus::register_span(point) >
                                                   std::uint32_t{b.request.address} + b.request.count)
        std::abort();
      ++covered[i];
    }
  }
  for (std::size_t i = 0; i < p.points.size(); ++i) {
    const bool wanted = !only || p.points[i].group == *only;
    if (covered[i] != (wanted ? 1 : 0)) std::abort();
  }
}

void check_modbus(const modbus::device_profile& p) {
  if (p.points.empty()) std::abort();
  std::set<std::string> names;
  for (const auto& point : p.points) {
    if (!names.insert(point.name).second) std::abort();  // point names are unique
    if (point.scale == 0) std::abort();
  }
  check_plan(p, p.blocks, std::nullopt, false);
  check_plan(p, p.alarm_blocks, modbus::point_group::alarm, false);
  check_plan(p, p.gapless_blocks, std::nullopt, true);
  check_plan(p, p.gapless_alarm_blocks, modbus::point_group::alarm, true);
  for (const auto& w : p.writes) {
    if (w.target.table != modbus::register_table::coil && w.target.table != modbus::register_table::holding)
      std::abort();
    if (w.min && w.max && *w.min > *w.max) std::abort();
    if (p.find_write(w.target.name) == nullptr) std::abort();
  }
}

void check_mqtt(const mqtt_ingest::ingest_profile& p) {
  if (p.points.empty()) std::abort();
  if (!p.topic.capture && p.id_path.empty()) std::abort();
  std::string why;
  const auto again = mqtt_ingest::parse_topic_pattern(p.topic.filter(), why);
  if (!again || again->levels.size() != p.topic.levels.size()) std::abort();
  // A message through the profile: readings or a reason, never a throw.
  std::string error;
  const auto m = mqtt_ingest::decode(p, "zigbee2mqtt/kitchen", R"({"smoke":true,"battery":87,"id":"x"})",
                                     clock::time_point{}, error);
  if (m.has_value() == !error.empty()) std::abort();
}

/// The same text parsed in memory, as the unit tests and fuzz_mqtt_mapping do: profile or not, and
/// how many errors.
std::pair<bool, std::size_t> in_memory(std::string_view text, bool mqtt) {
  config::config_errors errors;
  try {
    const auto root = toml::parse(text, std::string_view("fuzz.toml"));
    config::config_node node(root, "", errors);
    const bool ok =
        mqtt ? mqtt_ingest::parse_ingest_profile(node).has_value() : modbus::parse_profile(node).has_value();
    return {ok, errors.size()};
  } catch (const toml::parse_error&) {
    return {false, 1};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool mqtt = (data[0] & 1u) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto file = folder() / "profile.toml";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) std::abort();
  }
  config::config_errors errors;
  std::size_t profiles = 0;
  if (mqtt) {
    const auto library = mqtt_ingest::load_ingest_profiles(folder(), errors);
    profiles = library.size();
    for (const auto& [name, p] : library) {
      if (name != p.name) std::abort();
      check_mqtt(p);
    }
  } else {
    const auto library = modbus::load_profiles(folder(), errors);
    profiles = library.size();
    for (const auto& [name, p] : library) {
      if (!p || name != p->name) std::abort();
      check_modbus(*p);
    }
  }
  if (profiles > 1) std::abort();  // one file, one profile at most
  check_errors(errors);
  if (profiles == 0 && errors.empty()) std::abort();   // neither
  if (profiles == 1 && !errors.empty()) std::abort();  // both
  const auto [parsed, count] = in_memory(text, mqtt);
  if (parsed != (profiles == 1) || count != errors.size()) std::abort();
  return 0;
}
