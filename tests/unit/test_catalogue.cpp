// The device catalogue: the drivers describe each device once, and everything else finds it by
// name (its model, its points' labels, its writes, its rules, and what its profile tells an uplink).

#include "config/config_loader.hpp"
#include "domain/catalogue.hpp"
#include "driver.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace firegate;

TEST_CASE("catalogue: devices are found by name, labels by whole value, annotations by uplink") {
  auto sd1 = std::make_shared<model_description>();
  sd1->name = "SD-1";
  sd1->points = {{"state", "", {{0, "normal"}, {1, "fire"}}, {}}, {"obscuration", "dB/m", {}, {}}};
  sd1->annotations["gb26875"] = {{"component_type", 42}};
  auto rl = std::make_shared<model_description>();
  rl->writes = {"siren"};
  const device_catalogue catalogue({describe("smoke-2", sd1, nullptr), describe("relay-1", rl, nullptr)});

  REQUIRE(catalogue.find("smoke-2") != nullptr);
  CHECK(catalogue.find("smoke-2")->model_name() == "SD-1");
  CHECK(catalogue.find("smoke-2")->rules->empty());
  CHECK(catalogue.find("relay-1")->writes() == std::vector<std::string>{"siren"});
  // A device with nothing described answers like one with an empty profile.
  const auto bare = describe("bare", nullptr, nullptr);
  CHECK(bare.model_name().empty());
  CHECK(bare.label("state", 1).empty());
  CHECK(bare.annotations_for("gb26875").empty());
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
    CHECK_FALSE(described->model_name().empty());
    CHECK_FALSE(described->points().empty());
    // A detector has rules; an output (a relay module) has writes instead.
    CHECK((!described->rules->empty() || !described->writes().empty()));
  }
  // Devices of one profile share its description, on one bus or across buses: a thousand detectors
  // are one model's points and labels, not a thousand copies.
  std::map<std::string, const model_description*> seen;
  for (const auto& d : cfg.catalogue.devices()) {
    CHECK(seen.emplace(d.model_name(), d.model.get()).first->second == d.model.get());
  }
}
