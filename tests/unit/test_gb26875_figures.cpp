// GB/T 26875.3 application data laid out as the standard's figures lay it out, written here byte
// by byte (a comment names the figure or clause), never made by firegate's encoder: each decodes to
// the fields the figure names, and encodes back to the same bytes. Only the status, analog and
// operation types (1-4, 21, 24) put a time label after each object; versions and configurations
// have none; in the system times (8, 28) the time is the object.

#include "gb26875/app_data.hpp"
#include "gb26875/frame.hpp"
#include "gb26875_published.hpp"

#include <catch2/catch.hpp>

using namespace firegate::gb26875;
namespace pub = firegate::test::gb_published;
using pub::hex;

namespace {

const time_label sept_26{2, 58, 9, 26, 9, 2012};  // 02 3A 09 1A 09 0C

/// Decodes `bytes`, requires it to parse, and checks that it encodes back to the same bytes.
app_data decoded(const std::vector<std::uint8_t>& bytes) {
  std::string error;
  auto d = decode_app_data(bytes, error);
  INFO(error);
  REQUIRE(d);
  CHECK(encode(*d) == bytes);
  return *d;
}

std::int64_t num(const info_object& o, std::size_t field) {
  return std::get<std::int64_t>(o.values.at(field));
}

}  // namespace

TEST_CASE("gb26875 figures: the status, analog and operation types carry a time label after each object") {
  SECTION("figure 18: building fire-facility system status (type 1), two systems") {
    const auto d = decoded(hex("01 02  01 01 03 00 02 3A 09 1A 09 0C  0A 02 01 00 02 3A 09 1A 09 0C"));
    REQUIRE(d.objects.size() == 2);
    CHECK(num(d.objects[0], 2) == 0x0003);  // normal, fire alarm
    CHECK(num(d.objects[1], 0) == 10);      // a linkage controller
    CHECK(d.objects[1].time == sept_26);
  }
  SECTION("figure 19: component running status (type 2), a published frame") {
    const auto f = decode_one(pub::component_fire);
    REQUIRE(f.frame);
    const auto d = decoded(f.frame->data);
    REQUIRE(d.objects.size() == 1);
    CHECK(num(d.objects[0], 2) == 40);  // smoke detector
    CHECK(num(d.objects[0], 3) == 0x0002000A);
    CHECK(num(d.objects[0], 4) == 0x0002);
    CHECK(d.objects[0].time == sept_26);
  }
  SECTION("figure 20: component analog value (type 3)") {
    const auto d = decoded(hex("03 01  01 00 12 0A 00 02 00 03 8D 02  2D 1E 0C 01 06 19"));
    CHECK(num(d.objects[0], 5) == 653);  // 65.3 °C
    CHECK(d.objects[0].time == (time_label{45, 30, 12, 1, 6, 2025}));
  }
  SECTION("figure 21: facility operation information (type 4)") {
    const auto d = decoded(hex("04 01  01 01 02 05  02 3A 09 1A 09 0C"));
    CHECK(num(d.objects[0], 2) == 0x02);  // silence
    CHECK(num(d.objects[0], 3) == 5);
  }
  SECTION("figure 26: UITD running status (type 21), a published response") {
    const auto d = decoded(hex("15 01  08  02 3A 09 1A 09 0C"));
    CHECK(num(d.objects[0], 0) == 0x08);  // main power fault
    CHECK(d.objects[0].time == sept_26);
  }
  SECTION("figure 27: UITD operation information (type 24), a published inspection reply") {
    const auto d = decoded(hex("18 01  20 01  02 3A 09 1A 09 0C"));
    CHECK(num(d.objects[0], 0) == 0x20);
    CHECK(num(d.objects[0], 1) == 1);
  }
}

TEST_CASE("gb26875 figures: versions and configurations have no time label - system times are the object") {
  SECTION("figure 22: facility software version (type 5)") {
    const auto d = decoded(hex("05 01  01 01 02 03"));
    CHECK(num(d.objects[0], 2) == 2);
    CHECK(num(d.objects[0], 3) == 3);
    CHECK_FALSE(d.objects[0].time);
  }
  SECTION("figure 23: facility system configuration (type 6), two systems") {
    const auto d = decoded(hex("06 02  01 01 03 41 42 43  0A 01 00"));
    REQUIRE(d.objects.size() == 2);
    CHECK(std::get<std::string>(d.objects[0].values[2]) == "ABC");
    CHECK(std::get<std::string>(d.objects[1].values[2]).empty());
    CHECK_FALSE(d.objects[0].time);
  }
  SECTION("figure 24: component configuration (type 7)") {
    auto bytes = hex("07 01  01 01 28 0A 00 02 00");
    for (const char c : std::string("kitchen")) bytes.push_back(static_cast<std::uint8_t>(c));
    bytes.resize(2 + 38, 0);  // the description: 31 bytes, zero-padded; nothing after it
    const auto d = decoded(bytes);
    CHECK(std::get<std::string>(d.objects[0].values[4]) == "kitchen");
    CHECK_FALSE(d.objects[0].time);
  }
  SECTION("figure 25: facility system time (type 8): the time is the object") {
    const auto d = decoded(hex("08 01  01 01  02 3A 09 1A 09 0C"));
    CHECK(std::get<time_label>(d.objects[0].values[2]) == sept_26);
    CHECK_FALSE(d.objects[0].time);
  }
  SECTION("figure 28: UITD software version (type 25), a published frame") {
    const auto f = decode_one(pub::uitd_version);
    REQUIRE(f.frame);
    const auto d = decoded(f.frame->data);
    CHECK(num(d.objects[0], 0) == 1);
    CHECK(num(d.objects[0], 1) == 1);
  }
  SECTION("figure 29: UITD configuration (type 26)") {
    const auto d = decoded(hex("1A 01  05 66 67 2D 30 31"));
    CHECK(std::get<std::string>(d.objects[0].values[0]) == "fg-01");
  }
  SECTION("figure 30: UITD system time (type 28), published as sent and as a response") {
    for (const auto& frame_bytes : {pub::uitd_time, pub::uitd_time_response}) {
      const auto f = decode_one(frame_bytes);
      REQUIRE(f.frame);
      const auto d = decoded(f.frame->data);
      CHECK(std::get<time_label>(d.objects[0].values[0]) == sept_26);
      CHECK_FALSE(d.objects[0].time);
    }
  }
  SECTION("the old layout, with a label after these types' objects, is refused with where") {
    std::string error;
    CHECK_FALSE(decode_app_data(hex("19 01 01 01 02 3A 09 1A 09 0C"), error));
    CHECK(error == "type 25 (UITD software version): 6 bytes left over after 1 objects");
    CHECK_THROWS_WITH(encode(app_data{28, {{{sept_26}, sept_26}}}),
                      "type 28 (UITD system time), object 1: this type has no time label after its objects");
  }
}

TEST_CASE("gb26875 figures: the centre's reads name several systems or components (clause 8.3.2)") {
  SECTION("8.3.2.1: read facility system status (61), two systems") {
    const auto d = decoded(hex("3D 02  01 01  0A 01"));
    REQUIRE(d.objects.size() == 2);
    CHECK(num(d.objects[1], 0) == 10);
  }
  SECTION("8.3.2.2: read component running status (62), three components") {
    const auto d = decoded(hex("3E 03  01 01 65 00 00 00  01 01 66 00 00 00  01 01 0A 00 02 00"));
    REQUIRE(d.objects.size() == 3);
    CHECK(num(d.objects[2], 2) == 0x0002000A);
  }
  SECTION("the limits: 102 systems, 22 components for status, 63 for analog values, 26 for configuration") {
    for (const auto& [type, most, size] :
         {std::tuple{61, 102, 2}, std::tuple{62, 22, 6}, std::tuple{63, 63, 6}, std::tuple{67, 26, 6},
          std::tuple{66, 3, 2}}) {
      std::vector<std::uint8_t> bytes{static_cast<std::uint8_t>(type), static_cast<std::uint8_t>(most)};
      bytes.resize(2 + static_cast<std::size_t>(most * size), 1);
      std::string error;
      CHECK(decode_app_data(bytes, error));
      bytes[1] = static_cast<std::uint8_t>(most + 1);
      bytes.resize(bytes.size() + static_cast<std::size_t>(size), 1);
      CHECK_FALSE(decode_app_data(bytes, error));
    }
  }
  SECTION("8.3.2.15: synchronise the UITD clock (90), a published frame") {
    const auto f = decode_one(pub::sync_clock);
    REQUIRE(f.frame);
    CHECK(f.frame->command == command::control);
    const auto d = decoded(f.frame->data);
    CHECK(std::get<time_label>(d.objects[0].values[0]) == sept_26);
  }
  SECTION("8.3.2.10: read UITD operation records (84): a count and a start time") {
    const auto d = decoded(hex("54 01  0A  00 00 08 1A 09 0C"));
    CHECK(num(d.objects[0], 0) == 10);
  }
}

TEST_CASE("gb26875 figures: an answer over one frame's object limit is split into frames in order") {
  // 50 component statuses (46 bytes each with the label): 22 a frame by the object limit.
  app_data status{2, {}};
  for (std::int64_t i = 0; i < 50; ++i)
    status.objects.push_back(
        {{std::int64_t{1}, std::int64_t{1}, std::int64_t{40}, i, std::int64_t{1}, std::string("room")},
         sept_26});
  const auto parts = split(status);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].objects.size() == 22);
  CHECK(parts[2].objects.size() == 6);
  CHECK(num(parts[2].objects[5], 3) == 49);
  for (const auto& p : parts) CHECK(encode(p).size() <= max_data_length);
  // Six system configurations of 255 bytes each (258 bytes an object): 3 a frame (776 bytes). The
  // standard's object limits keep every type within 1,024 bytes; split() checks both anyway.
  app_data config{6, {}};
  for (int i = 0; i < 6; ++i)
    config.objects.push_back({{std::int64_t{1}, std::int64_t{i}, std::string(255, 'x')}, std::nullopt});
  const auto config_parts = split(config);
  REQUIRE(config_parts.size() == 2);
  CHECK(encode(config_parts[0]).size() == 776);
  // 63 analog values fit one frame (2 + 63 x 16 = 1,010 bytes).
  app_data analog{3, {}};
  for (std::int64_t i = 0; i < 64; ++i)
    analog.objects.push_back(
        {{std::int64_t{1}, std::int64_t{1}, std::int64_t{18}, i, std::int64_t{3}, i}, sept_26});
  const auto analog_parts = split(analog);
  REQUIRE(analog_parts.size() == 2);
  CHECK(analog_parts[0].objects.size() == 63);
  CHECK(encode(analog_parts[0]).size() == 1010);
  // Nothing to send is an error (the read is then denied), not zero frames and a centre left waiting.
  CHECK_THROWS_WITH(split(app_data{2, {}}), "type 2 (component running status): no objects to send");
}
