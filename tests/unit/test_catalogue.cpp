// The device catalogue: the drivers describe each device once, and everything else finds it by
// name (its model, its points' labels, its writes, its rules, and what its profile tells an uplink).

#include "config/config_loader.hpp"
#include "domain/catalogue.hpp"
#include "driver.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace firegate;

TEST_CASE("catalogue: devices are found by name, labels by whole value, annotations by uplink") {
  device_description smoke;
  smoke.name = "smoke-2";
  smoke.model = "SD-1";
  smoke.points = {{"state", "", {{0, "normal"}, {1, "fire"}}}, {"obscuration", "dB/m", {}}};
  smoke.annotations["gb26875"] = {{"component_type", 42}};
  device_description relay;
  relay.name = "relay-1";
  relay.writes = {"siren"};
  const device_catalogue catalogue({smoke, relay});

  REQUIRE(catalogue.find("smoke-2") != nullptr);
  CHECK(catalogue.find("smoke-2")->model == "SD-1");
  CHECK(catalogue.find("relay-1")->writes == std::vector<std::string>{"siren"});
  CHECK(catalogue.find("smoke-3") == nullptr);
  CHECK(catalogue.find("") == nullptr);
  // In name order, whatever order the buses gave them in.
  REQUIRE(catalogue.devices().size() == 2);
  CHECK(catalogue.devices()[0].name == "relay-1");

  CHECK(catalogue.label("smoke-2", "state", 1) == "fire");
  CHECK(catalogue.label("smoke-2", "state", 1.5).empty());  // not a whole number
  CHECK(catalogue.label("smoke-2", "state", 7).empty());    // a value the profile does not name
  CHECK(catalogue.label("smoke-2", "obscuration", 1).empty());
  CHECK(catalogue.label("smoke-9", "state", 1).empty());

  CHECK(catalogue.find("smoke-2")->annotations_for("gb26875").at("component_type") == 42);
  CHECK(catalogue.find("relay-1")->annotations_for("gb26875").empty());
}

TEST_CASE("catalogue: the configuration's catalogue has every device of every bus, as its profile says") {
  auto r = config::load_config_file(test::source_dir() + "/config/firegate.toml", driver_parsers());
  INFO(r.error_text());
  REQUIRE(r.config);
  const auto& cfg = *r.config;
  CHECK(cfg.catalogue.devices().size() == cfg.devices.size());
  for (const auto& d : cfg.devices) {
    INFO(d.name);
    const auto* described = cfg.catalogue.find(d.name);
    REQUIRE(described != nullptr);
    CHECK_FALSE(described->model.empty());
    CHECK_FALSE(described->points.empty());
    // A detector has rules; an output (a relay module) has writes instead.
    CHECK((!described->rules.empty() || !described->writes.empty()));
  }
}
