// GB/T 26875.3 codec: the worked example of docs/gb26875.md byte for byte, the reader
// over split, stuck-together and garbage input, every verification fault, and the table-driven
// application data with its refusals.

#include "gb26875/app_data.hpp"
#include "gb26875/frame.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace firegate::gb26875;

namespace {

std::vector<std::uint8_t> hex(const std::string& text) {
  std::vector<std::uint8_t> out;
  std::istringstream in(text);
  std::string b;
  while (in >> b) out.push_back(static_cast<std::uint8_t>(std::stoul(b, nullptr, 16)));
  return out;
}

// docs/gb26875.md, "Worked example": 65.3 °C from component type 18 at 0A 00 02 00.
const auto example =
    hex("40 40 02 00 01 01 2D 1E 0C 01 06 19 79 03 00 00 00 00 38 5B 01 00 00 00 12 00 02 03 01 00 01 12 0A "
        "00 02 "
        "00 03 8D 02 2D 1E 0C 01 06 19 CB 23 23");
const time_label example_time{45, 30, 12, 1, 6, 2025};
const address uitd{0x79, 0x03, 0, 0, 0, 0};
const address centre{0x38, 0x5B, 0x01, 0, 0, 0};

app_data example_data() {
  // System type 0, address 1, component type 18, address 0x0002000A, analog type 3, 653 (65.3 °C).
  return {3,
          {{{std::int64_t{0}, std::int64_t{1}, std::int64_t{18}, std::int64_t{0x0002000A}, std::int64_t{3},
             std::int64_t{653}},
            example_time}}};
}

frame example_frame() {
  frame f;
  f.serial = 2;
  f.time = example_time;
  f.source = uitd;
  f.destination = centre;
  f.command = command::send_data;
  f.data = encode(example_data());
  return f;
}

std::vector<read_result> read_all(frame_reader& r) {
  std::vector<read_result> out;
  while (auto x = r.next()) out.push_back(std::move(*x));
  return out;
}

}  // namespace

TEST_CASE("gb26875: the worked example encodes byte for byte and decodes back") {
  CHECK(encode(example_frame()) == example);
  const auto one = decode_one(example);
  REQUIRE(one.frame);
  CHECK(*one.frame == example_frame());
  std::string error;
  const auto data = decode_app_data(one.frame->data, error);
  REQUIRE(data);
  CHECK(data->type == 3);
  REQUIRE(data->objects.size() == 1);
  CHECK(std::get<std::int64_t>(data->objects[0].values[5]) == 653);
  CHECK(data->objects[0].time == example_time);
  const auto lines = describe(*data);
  const auto all = [&] {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }();
  CHECK(all.find("component type = 18 (temperature electrical-fire detector)") != std::string::npos);
  CHECK(all.find("component address = 131082 (0x0002000A)") != std::string::npos);
  CHECK(all.find("analog type = 3 (temperature (0.1 °C))") != std::string::npos);
  CHECK(all.find("time = 2025-06-01 12:30:45") != std::string::npos);
}

TEST_CASE("gb26875: a confirm echoes the serial with the addresses swapped") {
  frame confirm;
  confirm.serial = 1;
  confirm.time = example_time;
  confirm.source = centre;
  confirm.destination = uitd;
  confirm.command = command::confirm;
  const auto wire = encode(confirm);
  REQUIRE(wire.size() == header_size + trailer_size);
  CHECK(wire[2] == 0x01);
  CHECK(wire[3] == 0x00);
  CHECK(wire[24] == 0x00);  // no application data
  CHECK(wire[26] == 0x03);
  CHECK(wire[27] == checksum(std::span(wire).subspan(2, header_size - 2)));
  CHECK(decode_one(wire).frame == confirm);
}

TEST_CASE("gb26875: the reader takes frames split stuck together and among garbage") {
  const auto a = encode(example_frame());
  auto second = example_frame();
  second.serial = 3;
  second.data.clear();  // a heartbeat
  const auto b = encode(second);

  SECTION("one byte at a time") {
    frame_reader r;
    std::vector<read_result> got;
    for (auto byte : a) {
      r.feed(std::span(&byte, 1));
      for (auto& x : read_all(r)) got.push_back(std::move(x));
    }
    REQUIRE(got.size() == 1);
    CHECK(got[0].frame == example_frame());
    CHECK(r.buffered() == 0);
  }
  SECTION("two frames in one read with garbage before and between") {
    std::vector<std::uint8_t> stream{0x00, 0x40, 0x23, 0x23, 0xFF};
    stream.insert(stream.end(), a.begin(), a.end());
    stream.insert(stream.end(), {0x40, 0x13, 0x37});
    stream.insert(stream.end(), b.begin(), b.end());
    frame_reader r;
    r.feed(stream);
    const auto got = read_all(r);
    REQUIRE(got.size() == 2);
    CHECK(got[0].frame->serial == 2);
    CHECK(got[1].frame == second);
    CHECK(r.skipped() == 8);
  }
  SECTION("a start marker split across reads") {
    frame_reader r;
    std::vector<std::uint8_t> first{0x11, 0x22, 0x40};
    r.feed(first);
    CHECK_FALSE(r.next());
    r.feed(std::span(a).subspan(1));
    const auto got = read_all(r);
    REQUIRE(got.size() == 1);
    CHECK(got[0].frame == example_frame());
  }
  SECTION("garbage alone is dropped, not kept") {
    frame_reader r;
    std::vector<std::uint8_t> junk(5000, 0x55);
    r.feed(junk);
    CHECK_FALSE(r.next());
    CHECK(r.buffered() == 0);
  }
}

TEST_CASE("gb26875: frames that fail verification are named and the next good frame is still read") {
  const auto good = encode(example_frame());
  const auto fault_then_good = [&](std::vector<std::uint8_t> bad) {
    frame_reader r;
    bad.insert(bad.end(), good.begin(), good.end());
    r.feed(bad);
    return read_all(r);
  };
  SECTION("checksum") {
    auto bad = good;
    bad[bad.size() - 3] ^= 0xFF;
    const auto got = fault_then_good(bad);
    REQUIRE(got.size() == 2);
    REQUIRE(got[0].fault);
    CHECK(got[0].fault->what == frame_fault::kind::bad_checksum);
    CHECK(got[0].fault->detail == "checksum 0xCB expected, 0x34 found");
    CHECK(got[0].fault->serial == 2);
    CHECK(got[0].fault->source == uitd);
    CHECK(got[1].frame == example_frame());
    CHECK(decode_one(bad).error == "checksum 0xCB expected, 0x34 found");
  }
  SECTION("end marker") {
    auto bad = good;
    bad.back() = 0x24;
    const auto got = fault_then_good(bad);
    REQUIRE(got.size() == 2);
    CHECK(got[0].fault->what == frame_fault::kind::bad_end);
    CHECK(got[0].fault->detail == "end marker 23 23 expected, 23 24 found");
    CHECK(got[1].frame);
  }
  SECTION("length over the limit") {
    auto bad = good;
    bad[24] = 0x01;
    bad[25] = 0x04;  // 1025
    const auto got = fault_then_good(bad);
    REQUIRE(got.size() == 2);
    CHECK(got[0].fault->what == frame_fault::kind::too_long);
    CHECK(got[0].fault->detail == "application data length 1025 is over the limit of 1024");
    CHECK(got[1].frame);
  }
  SECTION("unknown command") {
    auto f = example_frame();
    f.command = 9;
    const auto got = fault_then_good(encode(f));
    REQUIRE(got.size() == 2);
    CHECK(got[0].fault->what == frame_fault::kind::unknown_command);
    CHECK(got[1].frame);
  }
  SECTION("the technician's decoder says what is missing or left over") {
    auto shorter = good;
    shorter.pop_back();
    CHECK(decode_one(shorter).error.find("bytes missing") != std::string::npos);
    auto longer = good;
    longer.push_back(0);
    CHECK(decode_one(longer).error.find("bytes left over") != std::string::npos);
    CHECK(decode_one(std::vector<std::uint8_t>{0x41, 0x40}).error ==
          "start marker 40 40 expected, 41 40 found");
  }
  SECTION("application data over the limit is refused when encoding") {
    auto f = example_frame();
    f.data.assign(1025, 0);
    CHECK_THROWS_AS(encode(f), std::length_error);
  }
}

TEST_CASE("gb26875: application data from the table with its refusals") {
  std::string error;
  // Type 2: component status with a description, fire alarm bit set.
  const app_data status{2,
                        {{{std::int64_t{1}, std::int64_t{1}, std::int64_t{42}, std::int64_t{7},
                           std::int64_t{0x0003}, std::string("kitchen")},
                          example_time}}};
  const auto wire = encode(status);
  CHECK(wire.size() == 2 + 1 + 1 + 1 + 4 + 2 + 31 + 6);
  const auto back = decode_app_data(wire, error);
  REQUIRE(back);
  CHECK(std::get<std::string>(back->objects[0].values[5]) == "kitchen");
  std::string text;
  for (const auto& l : describe(*back)) text += l + "\n";
  CHECK(text.find("component status = 3 (0x0003: normal, fire alarm)") != std::string::npos);
  CHECK(text.find("photoelectric smoke detector") != std::string::npos);

  // Type 21 UITD status, type 90 clock (the time itself), type 91 inspection (a reserved byte).
  CHECK(encode(app_data{21, {{{std::int64_t{0x21}}, example_time}}}).size() == 2 + 1 + 6);
  CHECK(encode(app_data{90, {{{example_time}, std::nullopt}}}).size() == 2 + 6);
  CHECK(encode(app_data{91, {{{std::int64_t{0}}, std::nullopt}}}) == std::vector<std::uint8_t>{91, 1, 0});
  CHECK(status_bits(status_kind::uitd, 0x21) == "normal monitoring, link to centre faulty");
  CHECK(status_bits(status_kind::component, 0x0002) == "test, fire alarm");

  // Refusals name the type, the object and the field.
  auto too_big = status;
  too_big.objects[0].values[4] = std::int64_t{70000};
  CHECK_THROWS_WITH(encode(too_big),
                    "type 2 (component running status), object 1, component status: 70000 is "
                    "outside 0..65535");
  auto long_text = status;
  long_text.objects[0].values[5] = std::string(32, 'x');
  CHECK_THROWS_WITH(encode(long_text), Catch::Contains("description: 32 bytes; at most 31"));
  auto wrong_kind = status;
  wrong_kind.objects[0].values[0] = std::string("1");
  CHECK_THROWS_WITH(encode(wrong_kind), Catch::Contains("system type: a number is expected"));
  CHECK_THROWS_WITH(encode(app_data{2, {}}), Catch::Contains("0 objects; 1 to 22"));
  CHECK_THROWS_WITH(encode(app_data{99, {}}), "type 99 is not in the table");

  // Decoding refusals.
  CHECK_FALSE(decode_app_data(std::vector<std::uint8_t>{99, 1, 0}, error));
  CHECK(error == "type 99 is not in the table");
  auto cut = wire;
  cut.resize(20);
  CHECK_FALSE(decode_app_data(cut, error));
  CHECK(error.find("object 1, description: 31 bytes needed") != std::string::npos);
  auto extra = wire;
  extra.push_back(0);
  CHECK_FALSE(decode_app_data(extra, error));
  CHECK(error.find("1 bytes left over") != std::string::npos);
  std::vector<std::uint8_t> many{2, 23};
  CHECK_FALSE(decode_app_data(many, error));
  CHECK(error.find("23 objects; 1 to 22") != std::string::npos);
}
