// libFuzzer target: MQTT ingest mappings (drivers/mqtt/mapping.cpp), which take whatever a
// wireless sensor or a bridge publishes. The input is a topic, a line break, then the payload. Any
// bytes must give readings or a reason, never both empty, never a crash; a good reading's value is
// finite, and the device id is one the configuration could name.

#include "mqtt/mapping.hpp"

#include <toml++/toml.h>

#include <cmath>
#include <cstdlib>
#include <string_view>

namespace {

firegate::mqtt_ingest::ingest_profile profile_of(const char* text) {
  firegate::config::config_errors errors;
  const auto root = toml::parse(text);
  firegate::config::config_node node(root, "", errors);
  auto p = firegate::mqtt_ingest::parse_ingest_profile(node);
  if (!p || !errors.empty()) std::abort();
  return std::move(*p);
}

const auto by_topic = profile_of(R"(name = "T"
topic = "z/+id/#"
sequence_field = "seq"
[[points]]
name = "smoke"
field = "smoke"
type = "bool"
[[points]]
name = "code"
field = "data.code"
labels = { 0 = "normal", 201 = "leakage" }
[[points]]
name = "battery"
field = "battery"
scale = 0.5
offset = 1
)");

const auto by_payload = profile_of(R"(name = "P"
topic = "p/+/push"
id_field = "dev.imei"
[[points]]
name = "status"
field = "Alarm_Status"
)");

void check(const firegate::mqtt_ingest::ingest_profile& p, std::string_view topic, std::string_view payload) {
  std::string error;
  const auto m = firegate::mqtt_ingest::decode(p, topic, payload, firegate::clock::time_point{}, error);
  if (m.has_value() == !error.empty()) std::abort();
  if (!m) return;
  if (m->device_id.empty() || m->device_id.size() > 64) std::abort();
  for (const auto& r : m->readings) {
    if (r.q == firegate::quality::good && !std::isfinite(r.value)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nl = input.find('\n');
  const auto topic = input.substr(0, nl);
  const auto payload = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  check(by_topic, topic, payload);
  check(by_payload, topic, payload);
  return 0;
}
