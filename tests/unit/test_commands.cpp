// Platform commands: each valid form parsed, each bad variant refused with a reason that names the
// field, and the reply correlated by the command's id.

#include "uplink/commands.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace firegate;

TEST_CASE("commands: the valid forms") {
  auto ack = parse_command(
      R"({"id":"c1","command":"ack","args":{"alarm_id":"a-1","verdict":"false","by":"operator 12"}})");
  REQUIRE(ack.error.empty());
  const auto& a = std::get<ack_command>(*ack.body);
  CHECK(a.alarm_id == "a-1");
  CHECK(a.verdict == verdict::false_alarm);
  CHECK(a.by == "operator 12");
  auto sh = parse_command(
      R"({"id":"c2","command":"shield","args":{"device":"smoke-1","minutes":120,"reason":"dusty","by":"tech"}})");
  REQUIRE(sh.error.empty());
  CHECK(std::get<shield_command>(*sh.body).length == std::chrono::minutes(120));
  auto tm =
      parse_command(R"({"id":"c3","command":"test_mode","args":{"device":"smoke-1","on":true,"by":"tech"}})");
  REQUIRE(tm.error.empty());
  CHECK(std::get<test_mode_command>(*tm.body).length == std::chrono::minutes(60));  // the default
  auto un = parse_command(R"({"id":"c4","command":"unshield","args":{"device":"smoke-1","by":"tech"}})");
  REQUIRE(un.error.empty());
  CHECK(std::get<unshield_command>(*un.body).device == "smoke-1");
}

TEST_CASE("commands: bad variants are refused with the reason - the id is kept for the reply") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"not json", "the command is not a JSON object"},
      {"[1,2]", "the command is not a JSON object"},
      {R"({"command":"ack"})", "field \"id\" must be a string of 1–64 characters: the reply carries it back"},
      {R"({"id":"c","command":"reboot"})",
       "unknown command \"reboot\"; this gateway knows ack, shield, unshield, test_mode"},
      {R"({"id":"c"})", "field \"command\" is missing"},
      {R"({"id":"c","command":"ack","args":{"alarm_id":"a","verdict":"maybe","by":"x"}})",
       "argument \"verdict\" must be \"real\", \"false\" or \"test\", not \"maybe\""},
      {R"({"id":"c","command":"ack","args":{"verdict":"real","by":"x"}})",
       "argument \"alarm_id\" is missing"},
      {R"({"id":"c","command":"ack","args":{"alarm_id":7,"verdict":"real","by":"x"}})",
       "argument \"alarm_id\" must be a string"},
      {R"({"id":"c","command":"ack","args":{"alarm_id":"a","verdict":"real","by":"x","extra":1}})",
       "argument \"extra\" is not known to this command"},
      {R"({"id":"c","command":"ack","args":[]})", "field \"args\" must be an object"},
      {R"({"id":"c","command":"ack","args":{},"sig":"x"})",
       "field \"sig\" is not part of a command (id, command, args)"},
      {R"({"id":"c","command":"shield","args":{"device":"d","minutes":0,"reason":"r","by":"x"}})",
       "argument \"minutes\" must be 1–10080, not 0"},
      {R"({"id":"c","command":"shield","args":{"device":"d","minutes":1.5,"reason":"r","by":"x"}})",
       "argument \"minutes\" must be a whole number"},
      {R"({"id":"c","command":"shield","args":{"device":"","minutes":5,"reason":"r","by":"x"}})",
       "argument \"device\" must be 1–64 characters"},
      {R"({"id":"c","command":"test_mode","args":{"device":"d","on":"yes","by":"x"}})",
       "argument \"on\" must be true or false"},
      {std::string(9000, ' '), "the command is 9000 bytes; at most 8192 are accepted"},
  };
  for (const auto& [payload, why] : cases) {
    INFO(payload.substr(0, 100));
    const auto c = parse_command(payload);
    CHECK_FALSE(c.body.has_value());
    CHECK(c.error == why);
  }
  CHECK(parse_command(R"({"id":"c9","command":"ack","args":{}})").id == "c9");
}

TEST_CASE("commands: the reply carries the id - the result - the events caused") {
  const auto cmd = parse_command(R"({"id":"c1","command":"unshield","args":{"device":"d","by":"x"}})");
  event e;
  e.id = "ev-1";
  e.kind = event_kind::device_unshielded;
  const auto ok = nlohmann::json::parse(command_reply("gw-1", cmd, "", std::vector{e}, clock::now()));
  CHECK(ok["schema"] == "firegate.command_reply/1");
  CHECK(ok["id"] == "c1");
  CHECK(ok["gateway"] == "gw-1");
  CHECK(ok["ok"] == true);
  CHECK(ok["events"][0]["id"] == "ev-1");
  CHECK(ok["events"][0]["type"] == "device_unshielded");
  const auto refused =
      nlohmann::json::parse(command_reply("gw-1", cmd, "d is not shielded", {}, clock::now()));
  CHECK(refused["ok"] == false);
  CHECK(refused["error"] == "d is not shielded");
  CHECK(refused["events"].empty());
}
