// Platform commands: each valid form parsed, each bad variant refused with a reason that names the
// field, and the reply correlated by the command's id.

#include "uplink/mqtt/commands.hpp"
#include "uplink/mqtt/payloads.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace firegate;

TEST_CASE("commands: the valid forms") {
  auto ack = parse_command(
      R"({"id":"c1","command":"ack","issued":"2026-11-27T00:00:00Z","args":{"alarm_id":"a-1","verdict":"false","by":"operator 12"}})");
  REQUIRE(ack.error.empty());
  const auto& a = std::get<ack_command>(*ack.body);
  CHECK(a.alarm_id == "a-1");
  CHECK(a.verdict == verdict::false_alarm);
  CHECK(a.by == "operator 12");
  auto sh = parse_command(
      R"({"id":"c2","command":"shield","issued":"2026-11-27T00:00:00Z","args":{"device":"smoke-1","minutes":120,"reason":"dusty","by":"tech"}})");
  REQUIRE(sh.error.empty());
  CHECK(std::get<shield_command>(*sh.body).length == std::chrono::minutes(120));
  auto tm = parse_command(
      R"({"id":"c3","command":"test_mode","issued":"2026-11-27T00:00:00Z","args":{"device":"smoke-1","on":true,"by":"tech"}})");
  REQUIRE(tm.error.empty());
  CHECK(std::get<test_mode_command>(*tm.body).length == std::chrono::minutes(60));  // the default
  auto un = parse_command(
      R"({"id":"c4","command":"unshield","issued":"2026-11-27T00:00:00Z","args":{"device":"smoke-1","by":"tech"}})");
  REQUIRE(un.error.empty());
  CHECK(std::get<unshield_command>(*un.body).device == "smoke-1");
}

TEST_CASE("commands: bad variants are refused with the reason - the id is kept for the reply") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"not json", "the command is not a JSON object"},
      {"[1,2]", "the command is not a JSON object"},
      {R"({"command":"ack","issued":"2026-11-27T00:00:00Z"})",
       "field \"id\" must be a string of 1–64 characters: the reply carries it back"},
      {R"({"id":"c","command":"reboot","issued":"2026-11-27T00:00:00Z"})",
       "unknown command \"reboot\"; the commands are ack, shield, unshield, test_mode, status, read, "
       "self_test, config_apply, config_confirm, logs, diagnostics"},
      {R"({"id":"c","command":"config_apply","issued":"2026-11-27T00:00:00Z","args":{"by":"x"}})",
       "config_apply takes either \"file\" (the whole site file) or \"patch\" (named keys), one of them"},
      {R"({"id":"c","command":"config_apply","issued":"2026-11-27T00:00:00Z","args":{"file":"[gateway]","patch":{},"by":"x"}})",
       "config_apply takes either \"file\" (the whole site file) or \"patch\" (named keys), one of them"},
      {R"({"id":"c","command":"config_apply","issued":"2026-11-27T00:00:00Z","args":{"patch":"set x","by":"x"}})",
       "argument \"patch\" must be an object (docs/remote.md, \"A patch\")"},
      {R"({"id":"c","command":"config_apply","issued":"2026-11-27T00:00:00Z","args":{"file":"[gateway]","by":"x","reboot":true}})",
       "argument \"reboot\" is not known to this command"},
      {R"({"id":"c","command":"config_confirm","issued":"2026-11-27T00:00:00Z","args":{"by":"x"}})",
       "argument \"revision\" is missing"},
      {R"({"id":"c","issued":"2026-11-27T00:00:00Z"})", "field \"command\" is missing"},
      {R"({"id":"c","command":"ack","issued":"2026-11-27T00:00:00Z","args":{"alarm_id":"a","verdict":"maybe","by":"x"}})",
       "argument \"verdict\" must be \"real\", \"false\" or \"test\", not \"maybe\""},
      {R"({"id":"c","command":"ack","issued":"2026-11-27T00:00:00Z","args":{"verdict":"real","by":"x"}})",
       "argument \"alarm_id\" is missing"},
      {R"({"id":"c","command":"ack","issued":"2026-11-27T00:00:00Z","args":{"alarm_id":7,"verdict":"real","by":"x"}})",
       "argument \"alarm_id\" must be a string"},
      {R"({"id":"c","command":"ack","issued":"2026-11-27T00:00:00Z","args":{"alarm_id":"a","verdict":"real","by":"x","extra":1}})",
       "argument \"extra\" is not known to this command"},
      {R"({"id":"c","command":"ack","issued":"2026-11-27T00:00:00Z","args":[]})",
       "field \"args\" must be an object"},
      {R"({"id":"c","command":"ack","issued":"2026-11-27T00:00:00Z","args":{},"sig":"x"})",
       "field \"sig\" is not part of a command (id, command, issued, args, expires)"},
      {R"({"id":"c","command":"shield","issued":"2026-11-27T00:00:00Z","args":{"device":"d","minutes":0,"reason":"r","by":"x"}})",
       "argument \"minutes\" must be 1–10080, not 0"},
      {R"({"id":"c","command":"shield","issued":"2026-11-27T00:00:00Z","args":{"device":"d","minutes":1.5,"reason":"r","by":"x"}})",
       "argument \"minutes\" must be a whole number"},
      {R"({"id":"c","command":"shield","issued":"2026-11-27T00:00:00Z","args":{"device":"","minutes":5,"reason":"r","by":"x"}})",
       "argument \"device\" must be 1–64 characters"},
      {R"({"id":"c","command":"test_mode","issued":"2026-11-27T00:00:00Z","args":{"device":"d","on":"yes","by":"x"}})",
       "argument \"on\" must be true or false"},
      {std::string(70000, ' '), "the command is 70000 bytes; at most 65536 are accepted"},
      {R"({"id":"c","command":"logs","issued":"2026-11-27T00:00:00Z","args":{"level":"loud"}})",
       "argument \"level\" must be \"debug\", \"info\", \"warn\", \"error\" or \"critical\", not \"loud\""},
      {R"({"id":"c","command":"logs","issued":"2026-11-27T00:00:00Z","args":{"lines":0}})",
       "argument \"lines\" must be 1–5000, not 0"},
  };
  for (const auto& [payload, why] : cases) {
    INFO(payload.substr(0, 100));
    const auto c = parse_command(payload);
    CHECK_FALSE(c.body.has_value());
    CHECK(c.error == why);
  }
  CHECK(parse_command(R"({"id":"c9","command":"ack","issued":"2026-11-27T00:00:00Z","args":{}})").id == "c9");
}

TEST_CASE("commands: the reply carries the id - the result - the events caused") {
  const auto cmd = parse_command(
      R"({"id":"c1","command":"unshield","issued":"2026-11-27T00:00:00Z","args":{"device":"d","by":"x"}})");
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

TEST_CASE("commands: status takes no arguments - expires is an ISO 8601 time with its offset") {
  auto st = parse_command(R"({"id":"s1","command":"status","issued":"2026-11-27T00:00:00Z"})");
  REQUIRE(st.error.empty());
  CHECK(std::holds_alternative<status_command>(*st.body));
  CHECK_FALSE(st.expires);
  CHECK(parse_command(
            R"({"id":"s2","command":"status","issued":"2026-11-27T00:00:00Z","args":{"verbose":true}})")
            .error == "argument \"verbose\" is not known to this command");
  auto ex = parse_command(
      R"({"id":"s3","command":"status","issued":"2026-11-27T00:00:00Z","expires":"2026-11-27T15:00:00+08:00"})");
  REQUIRE(ex.error.empty());
  REQUIRE(ex.expires);
  CHECK(*ex.expires ==
        clock::time_point(std::chrono::sys_days(std::chrono::year(2026) / 11 / 27).time_since_epoch() +
                          std::chrono::hours(7)));
  const std::string bad =
      "field \"expires\" must be an ISO 8601 time with its offset, such as \"2026-11-27T15:04:05+08:00\"";
  CHECK(
      parse_command(R"({"id":"s4","command":"status","issued":"2026-11-27T00:00:00Z","expires":"tomorrow"})")
          .error == bad);
  CHECK(
      parse_command(R"({"id":"s5","command":"status","issued":"2026-11-27T00:00:00Z","expires":1790000000})")
          .error == bad);
  CHECK(
      parse_command(
          R"({"id":"s6","command":"status","issued":"2026-11-27T00:00:00Z","expires":"2026-11-27T15:00:00"})")
          .error == bad);
}

TEST_CASE("commands: ISO 8601 times - offsets - fractions - impossible dates") {
  using namespace std::chrono;
  const auto utc = [](int y, unsigned m, unsigned d, int h, int mi, int s) {
    return clock::time_point(sys_days(year(y) / month(m) / day(d)).time_since_epoch() + hours(h) +
                             minutes(mi) + seconds(s));
  };
  const std::vector<std::pair<std::string, std::optional<clock::time_point>>> cases{
      {"2026-11-27T07:00:00Z", utc(2026, 11, 27, 7, 0, 0)},
      {"2026-11-27T15:00:00+08:00", utc(2026, 11, 27, 7, 0, 0)},
      {"2026-11-27T01:30:00-05:30", utc(2026, 11, 27, 7, 0, 0)},
      {"2026-11-27T07:00:00.250Z", utc(2026, 11, 27, 7, 0, 0) + milliseconds(250)},
      {"2024-02-29T00:00:00Z", utc(2024, 2, 29, 0, 0, 0)},
      {"2026-02-29T00:00:00Z", std::nullopt},           // not a leap year
      {"0921-11-27T15:00:00.250+08:00", std::nullopt},  // found by fuzz_command: overflowed the clock
      {"2201-01-01T00:00:00Z", std::nullopt},
      {"1970-01-01T00:00:00Z", clock::time_point{}},
      {"2026-13-01T00:00:00Z", std::nullopt},
      {"2026-11-27T24:00:00Z", std::nullopt},
      {"2026-11-27T07:00:00+8:00", std::nullopt},
      {"2026-11-27T07:00:00.Z", std::nullopt},
      {"2026-11-27T07:00:00Zjunk", std::nullopt},
      {"2026-11-27 07:00:00Z", utc(2026, 11, 27, 7, 0, 0)},  // RFC 3339 allows the space
      {"2026-11-27 15:00:00+0800", utc(2026, 11, 27, 7, 0, 0)},
      {"2026-11-27 15:00:00", std::nullopt},  // no zone: no time
      {"", std::nullopt},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    CHECK(parse_iso8601(text) == expected);
  }
}

TEST_CASE("commands: the allow-list and expiry refuse a well-formed command - with the reason") {
  const auto now =
      clock::time_point(std::chrono::sys_days(std::chrono::year(2026) / 11 / 27).time_since_epoch());
  auto shield = parse_command(
      R"({"id":"c1","command":"shield","issued":"2026-11-27T00:00:00Z","args":{"device":"d","minutes":5,"reason":"dust","by":"x"}})");
  REQUIRE(shield.body);
  CHECK(command_refusal(shield, {"ack", "status"}, now) ==
        "command \"shield\" is not accepted by this gateway (its [uplink.mqtt] commands: ack, status)");
  CHECK(command_refusal(shield, {}, now) ==
        "command \"shield\" is not accepted by this gateway (its [uplink.mqtt] commands: none)");
  CHECK(command_refusal(shield, {"shield"}, now).empty());
  auto late = parse_command(
      R"({"id":"c2","command":"status","issued":"2026-11-27T00:00:00Z","expires":"2026-11-26T23:59:59Z"})");
  CHECK(command_refusal(late, {"status"}, now).starts_with("the command expired at "));
  auto in_time = parse_command(
      R"({"id":"c3","command":"status","issued":"2026-11-27T00:00:00Z","expires":"2026-11-27T00:00:00Z"})");
  CHECK(command_refusal(in_time, {"status"}, now).empty());  // at the instant: still valid
}

TEST_CASE("commands: read names a device and maybe a point - self_test names who asks") {
  auto one = parse_command(
      R"({"id":"r1","command":"read","issued":"2026-11-27T00:00:00Z","args":{"device":"smoke-1","point":"state"}})");
  REQUIRE(one.error.empty());
  CHECK(std::get<read_command>(*one.body).point == "state");
  auto all = parse_command(
      R"({"id":"r2","command":"read","issued":"2026-11-27T00:00:00Z","args":{"device":"smoke-1"}})");
  REQUIRE(all.error.empty());
  CHECK(std::get<read_command>(*all.body).point.empty());
  CHECK(parse_command(R"({"id":"r3","command":"read","issued":"2026-11-27T00:00:00Z","args":{}})").error ==
        "argument \"device\" is missing");
  CHECK(parse_command(
            R"({"id":"r4","command":"read","issued":"2026-11-27T00:00:00Z","args":{"device":"d","point":7}})")
            .error == "argument \"point\" must be a string");
  auto st = parse_command(
      R"({"id":"t1","command":"self_test","issued":"2026-11-27T00:00:00Z","args":{"by":"tech 7"}})");
  REQUIRE(st.error.empty());
  CHECK(std::get<self_test_command>(*st.body).by == "tech 7");
  CHECK(parse_command(R"({"id":"t2","command":"self_test","issued":"2026-11-27T00:00:00Z"})").error ==
        "argument \"by\" is missing");
}

TEST_CASE("commands: the readings of a read - one point or all") {
  const auto t = clock::time_point(std::chrono::seconds(1'790'000'000));
  const std::vector<reading> polled{{"d", "state", 1, "", quality::good, t},
                                    {"d", "temperature", 25.5, "°C", quality::bad, t}};
  auto one = nlohmann::json::parse(readings_result(polled, "temperature"));
  REQUIRE(one["readings"].size() == 1);
  CHECK(one["readings"][0] == nlohmann::json{{"point", "temperature"},
                                             {"value", 25.5},
                                             {"unit", "°C"},
                                             {"quality", "bad"},
                                             {"time", iso8601(t)}});
  CHECK(nlohmann::json::parse(readings_result(polled, ""))["readings"].size() == 2);
}

TEST_CASE("commands: issued is required - too old, from the future or retained, refused with the reason") {
  const auto now =
      clock::time_point(std::chrono::sys_days(std::chrono::year(2026) / 11 / 27).time_since_epoch());
  const std::vector<std::string> all{"status"};
  auto none = parse_command(R"({"id":"i1","command":"status"})");
  CHECK(none.error.find("field \"issued\" must be the time the platform issued the command") == 0);
  CHECK(none.id == "i1");
  CHECK(parse_command(R"({"id":"i2","command":"status","issued":"yesterday"})").error.find("\"issued\"") !=
        std::string::npos);
  // Five minutes is the default: 4:59 old is carried out, 5:01 is not.
  auto fresh = parse_command(R"({"id":"i3","command":"status","issued":"2026-11-26T23:55:01Z"})");
  REQUIRE(fresh.error.empty());
  CHECK(command_refusal(fresh, all, now).empty());
  auto stale = parse_command(R"({"id":"i4","command":"status","issued":"2026-11-26T23:54:59Z"})");
  CHECK(command_refusal(stale, all, now).find("more than 300 s ago") != std::string::npos);
  CHECK(command_refusal(stale, all, now, std::chrono::seconds(600)).empty());
  // A platform clock running ahead: a minute is tolerated, more is refused.
  auto ahead = parse_command(R"({"id":"i5","command":"status","issued":"2026-11-27T00:02:00Z"})");
  CHECK(command_refusal(ahead, all, now).find("ahead of the gateway's clock") != std::string::npos);
  // The broker's stored copy is never carried out, whatever else holds.
  fresh.retained = true;
  CHECK(command_refusal(fresh, all, now).find("retained message") != std::string::npos);
}

TEST_CASE("commands: a signed command is opened only with the right HMAC-SHA256") {
  // RFC 4231, test case 2.
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Signed by `openssl dgst -sha256 -mac HMAC -macopt key:0123456789abcdef0123456789abcdef`.
  const std::string key = "0123456789abcdef0123456789abcdef";
  const std::string inner = R"({"id":"s1","command":"status","issued":"2026-11-27T15:00:00+08:00"})";
  const auto envelope = [&](const std::string& mac) {
    return nlohmann::json{{"signed", inner}, {"hmac", mac}}.dump();
  };
  std::string error, id;
  auto opened = open_signed_command(
      envelope("f697e9951c33c1d0055e9656c32892b87ba59a6e7ddba2af9994a4a6e46c77b8"), key, error, id);
  REQUIRE(opened);
  CHECK(*opened == inner);
  CHECK(error.empty());
  // Upper-case hex is the same HMAC.
  CHECK(open_signed_command(envelope("F697E9951C33C1D0055E9656C32892B87BA59A6E7DDBA2AF9994A4A6E46C77B8"), key,
                            error, id));
  // One digit off, another key, a bare command, extra fields: refused, the id kept for the reply.
  error.clear();
  id.clear();
  CHECK_FALSE(open_signed_command(
      envelope("f697e9951c33c1d0055e9656c32892b87ba59a6e7ddba2af9994a4a6e46c77b9"), key, error, id));
  CHECK(error.find("does not match") != std::string::npos);
  CHECK(id == "s1");
  CHECK_FALSE(
      open_signed_command(envelope("f697e9951c33c1d0055e9656c32892b87ba59a6e7ddba2af9994a4a6e46c77b8"),
                          "another key of thirty-two bytes!", error, id));
  error.clear();
  CHECK_FALSE(open_signed_command(inner, key, error, id));
  CHECK(error.find("takes only signed commands") != std::string::npos);
  CHECK_FALSE(open_signed_command(R"({"signed":"{}","hmac":"00","by":"x"})", key, error, id));
}
