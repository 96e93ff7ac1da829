// The uplinks this build knows (daemon/uplink/registry.cpp), as the application reads them: their
// order gives the delivery bits in the store, which an older firegated's database already holds.

#include "uplink/uplink.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace firegate;

namespace {

config::gateway_file both_uplinks() {
  config::gateway_file site;
  site.mqtt.host = "platform.example";
  site.gb26875 = config::gb26875_uplink_config{};
  site.gb26875->host = "centre.example";
  return site;
}

}  // namespace

TEST_CASE(
    "uplink registry: MQTT then GB/T 26875.3, the order of their delivery bits - only MQTT takes stored "
    "telemetry") {
  const auto entries = registered_uplinks();
  std::vector<std::string> names;
  for (const auto& e : entries) names.emplace_back(e.name);
  // MQTT bit 0 and GB/T 26875.3 bit 1 on a site with both: what firegated has always stored.
  REQUIRE(names == std::vector<std::string>{"mqtt", "gb26875"});
  CHECK(entries[0].telemetry);
  CHECK_FALSE(entries[1].telemetry);

  auto site = both_uplinks();
  CHECK(entries[0].configured(site));
  CHECK(entries[1].configured(site));
  CHECK(configured_uplinks(site) == std::vector<const uplink_entry*>{&entries[0], &entries[1]});
  site.mqtt.host.clear();
  CHECK_FALSE(entries[0].configured(site));  // GB/T 26875.3 only: it has bit 0
  CHECK(configured_uplinks(site) == std::vector<const uplink_entry*>{&entries[1]});
  site.gb26875.reset();
  CHECK_FALSE(entries[1].configured(site));
}

TEST_CASE(
    "uplink registry: a reload remakes MQTT only when its settings change - GB/T 26875.3 always - keep puts "
    "the running settings back") {
  const auto entries = registered_uplinks();
  const auto running = both_uplinks();
  auto next = running;
  CHECK_FALSE(entries[0].changed(running, next));
  CHECK(entries[1].changed(running, next));  // its device table is read when it is made
  next.mqtt.port = 8883;
  CHECK(entries[0].changed(running, next));

  next.mqtt.host.clear();
  next.gb26875.reset();
  for (const auto& e : entries) e.keep(next, running);
  CHECK(next.mqtt == running.mqtt);
  REQUIRE(next.gb26875);
  CHECK(next.gb26875->host == "centre.example");
}
