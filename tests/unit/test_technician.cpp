// firegatectl's scan: which shipped profile a unit's answers fit (drivers/modbus/technician.cpp),
// on the real profiles in config/profiles, and the checks of a raw register request.

#include "modbus/technician.hpp"
#include "support.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <tuple>

using namespace firegate;
using namespace firegate::modbus;

namespace {

profile_library shipped() {
  config::config_errors errors;
  auto library = load_profiles(std::filesystem::path(test::source_dir()) / "config/profiles/modbus", errors);
  REQUIRE(errors.empty());
  return library;
}

/// What a unit serving `profile` answers: each of its reads, with `fill` in every register.
std::map<read_key, std::vector<std::uint16_t>> answers_of(const device_profile& profile, std::uint16_t fill) {
  std::map<read_key, std::vector<std::uint16_t>> out;
  for (const auto& b : profile.gapless_blocks) {
    out[{b.request.function, b.request.address, b.request.count}] =
        std::vector<std::uint16_t>(b.request.count, fill);
  }
  return out;
}

}  // namespace

TEST_CASE("scan: a unit fits a profile when it answers every read with values the profile allows") {
  const auto library = shipped();
  const auto& sd1 = *library.at("SD-1");
  CHECK(matching_profiles(library, answers_of(sd1, 0)) == std::vector<std::string>{"SD-1"});
  // State 9 is not one of SD-1's states (0–4): it is not an SD-1.
  CHECK(matching_profiles(library, answers_of(sd1, 9)).empty());
  // One read unanswered (an exception): not that profile.
  auto partial = answers_of(*library.at("EFD-4T"), 0);
  partial.erase(partial.begin());
  for (const auto& name : matching_profiles(library, partial)) CHECK(name != "EFD-4T");
  CHECK(matching_profiles(library, {}).empty());
  // Every profile's reads are asked once each.
  const auto reads = identification_reads(library);
  for (std::size_t i = 0; i < reads.size(); ++i) {
    for (std::size_t j = i + 1; j < reads.size(); ++j) CHECK_FALSE(reads[i] == reads[j]);
  }
}

TEST_CASE("raw registers: a request outside what Modbus allows is refused before it is sent") {
  bool sent = false;
  const pdu_sender send = [&](std::uint8_t, std::vector<std::uint8_t>, pdu_handler) { sent = true; };
  const auto refusal = [&](register_request r) {
    register_reply out;
    transact_registers(send, r, [&](register_reply x) { out = std::move(x); });
    return out.detail;
  };
  register_request r;
  r.table = "holdings";
  CHECK(refusal(r).find("no table \"holdings\"") != std::string::npos);
  r.table = "holding";
  r.unit = 0;
  CHECK(refusal(r).find("1–247") != std::string::npos);
  r.unit = 1;
  r.count = 126;
  CHECK(refusal(r).find("1–125") != std::string::npos);
  r.count = 1;
  r.address = 65535;
  r.count = 2;
  CHECK(refusal(r).find("past the last address") != std::string::npos);
  r = {};
  r.table = "input";
  r.values = {1};
  CHECK(refusal(r).find("read-only") != std::string::npos);
  r.table = "coil";
  r.values = {2};
  CHECK(refusal(r).find("0 or 1") != std::string::npos);
  CHECK_FALSE(sent);
  r.values = {1};
  refusal(r);
  CHECK(sent);
}

TEST_CASE(
    "scan: how sure a guess is - a value a profile names, blank registers, several profiles told apart") {
  const auto library = shipped();
  const auto& sd1 = *library.at("SD-1");
  // An SD-1 as it answers: state 0 (normal), 0.25 dB/m, 21.5 °C, 24.00 V.
  std::map<read_key, std::vector<std::uint16_t>> answers;
  for (const auto& b : sd1.gapless_blocks) {
    std::vector<std::uint16_t> regs(b.request.count, 7);
    if (b.request.address == 0 && b.request.count >= 4) regs = {0, 25, 215, 2400};
    answers[{b.request.function, b.request.address, b.request.count}] = regs;
  }
  REQUIRE(matching_profiles(library, answers) == std::vector<std::string>{"SD-1"});
  CHECK(identity_text(library, answers, {"SD-1"}, 3) == "looks like SD-1 (state reads 0 (normal))");
  // Every register 0, as blank ones read: it fits, but says nothing.
  const auto blank = answers_of(sd1, 0);
  CHECK(identity_text(library, blank, matching_profiles(library, blank), 3)
            .starts_with("may be SD-1: every register it answered reads 0"));

  // Two makes of meter that fit the same answers: named both, with the register that differs.
  test::temp_dir dir;
  std::filesystem::create_directories(dir / "modbus");
  for (const auto& [name, second, unit] :
       {std::tuple{"METER-A", "current", "A"}, std::tuple{"METER-B", "pressure", "kPa"}}) {
    std::ofstream(dir / "modbus" / (std::string(name) + ".toml")) << fmt::format(R"(name = "{}"
description = "a meter"
[[points]]
name = "status"
table = "holding"
address = 0
type = "uint16"
labels = {{ 0 = "ok", 1 = "alarm" }}
[[points]]
name = "{}"
table = "holding"
address = 1
type = "uint16"
unit = "{}"
)",
                                                                                 name, second, unit);
  }
  config::config_errors errors;
  const auto meters = load_profiles(dir / "modbus", errors);
  INFO(errors.format("meters"));
  REQUIRE(meters.size() == 2);
  const std::map<read_key, std::vector<std::uint16_t>> read{
      {{function_code::read_holding_registers, 0, 2}, {1, 57}}};
  const auto fits = matching_profiles(meters, read);
  REQUIRE(fits.size() == 2);
  CHECK(identity_text(meters, read, fits, 1) ==
        "could be METER-A or METER-B: what it answered fits each; to tell them apart: holding register 1 "
        "(0x0001) is METER-A's current (A) but METER-B's pressure (kPa)");
}
