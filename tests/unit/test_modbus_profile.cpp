// Proves Modbus device profiles: every data type decodes from known register images with its byte
// and word order, scale, offset and invalid sentinels; block reads coalesce within the gap limit and
// the 125-register request limit; each class of profile error is reported with file, line and key;
// and the shipped profiles load clean.

#include "modbus/modbus_error.hpp"
#include "modbus/profile.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace firegate;
using namespace firegate::modbus;

namespace {

point_def reg(data_type t, std::uint16_t address = 0) {
  point_def p;
  p.name = std::string("p");  // not = "p": GCC 12 -O2 false -Wrestrict (bug 105329)
  p.table = register_table::holding;
  p.address = address;
  p.type = t;
  return p;
}

using regs = std::vector<std::uint16_t>;

struct parsed {
  std::optional<device_profile> profile;
  config::config_errors errors;
};

parsed parse(const std::string& text) {
  parsed out;
  const auto root = toml::parse(text, std::string_view("test.toml"));
  config::config_node node(root, "", out.errors);
  out.profile = parse_profile(node);
  return out;
}

/// A profile named T with the given points. Built with append: GCC 12 at -O2 gives a false -Wrestrict
/// on std::string + literal (GCC bug 105329).
parsed parse_points(std::string_view points) {
  std::string text = "name = \"T\"\n";
  text.append(points);
  return parse(text);
}

}  // namespace

TEST_CASE("16-bit types, scale, offset and byte order") {
  auto p = reg(data_type::int16);
  p.scale = 0.1;
  CHECK(decode_registers(p, regs{0xFF9C}).value == Approx(-10.0));
  p.type = data_type::uint16;
  CHECK(decode_registers(p, regs{0xFF9C}).value == Approx(6543.6));
  p.scale = 1;
  p.offset = -40;
  CHECK(decode_registers(p, regs{100}).value == Approx(60));
  p.offset = 0;
  p.bytes = byte_order::little;
  CHECK(decode_registers(p, regs{0x3412}).value == 0x1234);
}

TEST_CASE("a scale of 1/n gives the decimal the device means, not the binary product") {
  // 3 x 0.1 is 0.30000000000000004 as doubles multiply; the register means 0.3, the double a
  // parser reads from the text "0.3". Compared with ==, not Approx: the exact double matters to
  // the platform's JSON and to the store's packed values.
  auto p = reg(data_type::uint16);
  p.scale = 0.1;
  CHECK(3 * 0.1 != 0.3);
  CHECK(decode_registers(p, regs{653}).value == 65.3);
  CHECK(decode_registers(p, regs{3}).value == 0.3);
  p.scale = 0.01;
  CHECK(decode_registers(p, regs{2407}).value == 24.07);
  p.scale = 0.05;  // 1/20
  CHECK(decode_registers(p, regs{7}).value == 0.35);
  // An offset of whole steps is taken before the division: (6530 - 4000) / 100, where 6530 / 100
  // - 40 would be 25.299999999999997.
  p.scale = 0.01;
  p.offset = -40;
  CHECK(decode_registers(p, regs{6530}).value == 25.3);
  // A scale that is not 1/n multiplies as before.
  p.offset = 0;
  p.scale = 0.3;
  CHECK(decode_registers(p, regs{10}).value == 10 * 0.3);
}

TEST_CASE("32-bit types in both word orders") {
  // 12.5f is 0x41480000.
  auto f = reg(data_type::float32);
  CHECK(decode_registers(f, regs{0x4148, 0x0000}).value == Approx(12.5));
  f.words = word_order::little;  // low word first, as the GD-1-FLOAT-LE variant sends it
  CHECK(decode_registers(f, regs{0x0000, 0x4148}).value == Approx(12.5));
  f.bytes = byte_order::little;  // and bytes swapped inside each register too
  CHECK(decode_registers(f, regs{0x0000, 0x4841}).value == Approx(12.5));

  auto u = reg(data_type::uint32);
  CHECK(decode_registers(u, regs{0x0001, 0x86A0}).value == 100000);
  u.words = word_order::little;
  CHECK(decode_registers(u, regs{0x86A0, 0x0001}).value == 100000);
  auto i = reg(data_type::int32);
  CHECK(decode_registers(i, regs{0xFFFF, 0xFFFE}).value == -2);
  CHECK(register_span(i) == 2);
  CHECK(decode_registers(i, regs{0xFFFF}).q == quality::bad);  // one register is not enough
}

TEST_CASE("non-finite floats and sentinels are bad quality, not values") {
  auto f = reg(data_type::float32);
  CHECK(decode_registers(f, regs{0x7FC0, 0x0000}).q == quality::bad);  // NaN
  auto t = reg(data_type::int16);
  t.scale = 0.1;
  t.invalid = {0x7FFF};  // probe open
  auto open = decode_registers(t, regs{0x7FFF});
  CHECK(open.q == quality::bad);
  CHECK(decode_registers(t, regs{0x7FFE}).q == quality::good);
}

TEST_CASE("bits of alarm words and coils") {
  auto b = reg(data_type::bit);
  b.bit = 8;  // EFD-4T arc fault
  CHECK(decode_registers(b, regs{0x0100}).value == 1);
  CHECK(decode_registers(b, regs{0x00FF}).value == 0);
  b.bit = 15;
  CHECK(decode_registers(b, regs{0x8000}).value == 1);
  point_def coil;
  coil.table = register_table::coil;
  coil.type = data_type::boolean;
  CHECK(decode_bit(coil, true).value == 1);
  CHECK(read_function(register_table::coil) == function_code::read_coils);
  CHECK(read_function(register_table::input) == function_code::read_input_registers);
}

TEST_CASE("block reads coalesce within the gap and split at the limits") {
  std::vector<point_def> pts{reg(data_type::uint16, 0), reg(data_type::uint16, 1), reg(data_type::float32, 9),
                             reg(data_type::uint16, 30)};
  auto blocks = plan_reads(pts, 8);
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[0].request == read_request{function_code::read_holding_registers, 0, 11});  // 0-1, gap 7, 9-10
  CHECK(blocks[0].points == std::vector<std::size_t>{0, 1, 2});
  CHECK(blocks[1].request == read_request{function_code::read_holding_registers, 30, 1});
  CHECK(plan_reads(pts, 0).size() == 3);

  std::vector<point_def> far{reg(data_type::uint16, 0), reg(data_type::uint16, 124),
                             reg(data_type::uint16, 125)};
  auto split = plan_reads(far, 200);
  REQUIRE(split.size() == 2);  // 0-124 is 125 registers; 125 must go in a second request
  CHECK(split[0].request.count == 125);

  auto input = reg(data_type::uint16, 0);
  input.table = register_table::input;
  input.group = point_group::alarm;
  auto mixed = plan_reads({reg(data_type::uint16, 0), input});
  CHECK(mixed.size() == 2);  // never across tables
  auto alarm_only = plan_reads({reg(data_type::uint16, 0), input}, point_group::alarm);
  REQUIRE(alarm_only.size() == 1);
  CHECK(alarm_only[0].request == read_request{function_code::read_input_registers, 0, 1});
  CHECK(alarm_only[0].points == std::vector<std::size_t>{1});
}

TEST_CASE("profile errors name the line, the key and the fix") {
  SECTION("bool in a register table") {
    auto r = parse_points("[[points]]\nname = \"x\"\ntable = \"holding\"\naddress = 1\ntype = \"bool\"\n");
    REQUIRE_FALSE(r.profile);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.items()[0].line == 6);
    CHECK(r.errors.items()[0].path == "points[0].type");
    CHECK(r.errors.items()[0].message.find("use type = \"bit\"") != std::string::npos);
  }
  SECTION("a bit point without its bit") {
    auto r = parse_points("[[points]]\nname = \"x\"\ntable = \"holding\"\naddress = 1\ntype = \"bit\"\n");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.items()[0].path == "points[0].bit");
    CHECK(r.errors.items()[0].message == "missing; set an integer in 0–15");
  }
  SECTION("word order on a 16-bit point") {
    auto r =
        parse_points("[[points]]\nname = \"x\"\ntable = \"holding\"\naddress = 1\nword_order = \"little\"\n");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.items()[0].path == "points[0].word_order");
  }
  SECTION("duplicate point names, unknown keys and bad labels, all at once") {
    auto r = parse_points(
        "[[points]]\nname = \"x\"\ntable = \"input\"\naddress = 1\nunits = \"V\"\n"
        "[[points]]\nname = \"x\"\ntable = \"input\"\naddress = 2\nlabels = { one = \"fire\" }\n");
    REQUIRE_FALSE(r.profile);
    REQUIRE(r.errors.size() == 3);
    const auto text = r.errors.format("test.toml");
    CHECK(text.find("points[0].units: unknown key; did you mean \"unit\"?") != std::string::npos);
    CHECK(text.find("points[1].name: \"x\" is used by another point") != std::string::npos);
    CHECK(text.find("points[1].labels.one: a label's key must be the integer value") != std::string::npos);
  }
  SECTION("a 32-bit point at the last register") {
    auto r =
        parse_points("[[points]]\nname = \"x\"\ntable = \"input\"\naddress = 65535\ntype = \"uint32\"\n");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.items()[0].path == "points[0].address");
  }
  SECTION("an unknown key alone: no profile, as the header promises (found by fuzz_profile)") {
    auto r = parse_points("vendor = \"x\"\n[[points]]\nname = \"x\"\ntable = \"input\"\naddress = 1\n");
    CHECK_FALSE(r.profile);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.items()[0].path == "vendor");
  }
  SECTION("no points") {
    auto r = parse_points("");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.items()[0].path == "points");
  }
}

TEST_CASE("the shipped profiles load clean and plan few requests") {
  config::config_errors errors;
  auto library = load_profiles(test::source_dir() + "/config/profiles/modbus", errors);
  INFO(errors.format("profiles"));
  REQUIRE(errors.empty());
  REQUIRE(library.size() == 5);
  const auto& sd1 = *library.at("SD-1");
  CHECK(sd1.blocks.size() == 1);  // state, smoke, temperature, supply: one fc 04 read
  CHECK(sd1.blocks[0].request == read_request{function_code::read_input_registers, 0, 4});
  CHECK(sd1.points[0].labels.at(1) == "fire");
  const auto& efd = *library.at("EFD-4T");
  REQUIRE(efd.blocks.size() == 2);  // measurements with the alarm and fault words; settings
  CHECK(efd.blocks[0].request == read_request{function_code::read_holding_registers, 0x0000, 0x12});
  CHECK(efd.blocks[1].request == read_request{function_code::read_holding_registers, 0x0100, 7});
  // The alarm group: the measurements, the voltages and currents that are the bit alarms' evidence
  // (read with them), and the alarm and fault words: one request, the evidence closing the gap.
  REQUIRE(efd.alarm_blocks.size() == 1);
  CHECK(efd.alarm_blocks[0].request == read_request{function_code::read_holding_registers, 0x0000, 0x12});
  // SD-1: the state with the fire rule's evidence (smoke, temperature), one fc 04 read.
  CHECK(sd1.alarm_blocks.size() == 1);
  CHECK(sd1.alarm_blocks[0].request == read_request{function_code::read_input_registers, 0, 3});
  const auto& gd1 = *library.at("GD-1");  // concentration, state and both settings: one fc 03 read
  REQUIRE(gd1.alarm_blocks.size() == 1);
  CHECK(gd1.alarm_blocks[0].request == read_request{function_code::read_holding_registers, 0, 4});
  const auto* fire = &sd1.rules[0];
  CHECK(fire->name == "fire");
  CHECK(fire->evidence == std::vector<std::string>{"smoke", "temperature"});
  REQUIRE(efd.writes.size() == 3);
  CHECK(efd.find_write("mode")->verify);
  CHECK_FALSE(efd.find_write("command")->verify);
  CHECK(efd.find_write("leakage_alarm_setting")->max == 1000);
  CHECK(efd.find_write("nope") == nullptr);
  const auto& le = *library.at("GD-1-FLOAT-LE");
  CHECK(le.points[0].type == data_type::float32);
  CHECK(le.points[0].words == word_order::little);
  const auto& relay = *library.at("RL-2");  // the linkage outputs: two coils, read in one fc 01 request
  REQUIRE(relay.blocks.size() == 1);
  CHECK(relay.blocks[0].request == read_request{function_code::read_coils, 0, 2});
  CHECK(relay.find_write("siren")->verify);
  CHECK(relay.find_write("power_cut")->target.table == register_table::coil);
}

TEST_CASE("profile folder errors name the file") {
  test::temp_dir dir;
  std::ofstream(dir / "bad.toml")
      << "name = \"B\"\n[[points]]\nname = \"x\"\ntable = \"holdin\"\naddress = 1\n";
  std::ofstream(dir / "broken.toml") << "name = \"C\n";
  std::ofstream(dir / "twin.toml")
      << "name = \"B2\"\n[[points]]\nname = \"x\"\ntable = \"coil\"\naddress = 1\n";
  std::ofstream(dir / "twin2.toml")
      << "name = \"B2\"\n[[points]]\nname = \"x\"\ntable = \"coil\"\naddress = 1\n";
  config::config_errors errors;
  auto library = load_profiles(dir.path(), errors);
  CHECK(library.size() == 1);
  const auto text = errors.format("firegate.toml");
  INFO(text);
  CHECK(text.find((dir / "bad.toml").string() + ":4 points[0].table: \"holdin\" is not known; did you mean "
                                                "\"holding\"?") != std::string::npos);
  CHECK(text.find((dir / "broken.toml").string() + ":1 (syntax)") != std::string::npos);
  CHECK(text.find("profile \"B2\" is defined twice") != std::string::npos);

  config::config_errors missing;
  CHECK(load_profiles(dir / "nope", missing).empty());
  CHECK(missing.format("x").find("no such folder") != std::string::npos);
}

TEST_CASE("write entries are checked like points - with their own rules") {
  const std::string point = "[[points]]\nname = \"x\"\ntable = \"holding\"\naddress = 1\n";
  struct bad_write {
    const char* why;
    const char* keys;  ///< after name = "y"
    const char* path;  ///< the one error expected
  };
  const bad_write cases[] = {
      {"a bit of a register is not writable", "table = \"holding\"\naddress = 2\ntype = \"bit\"\nbit = 3\n",
       "writes[0].type"},
      {"input registers cannot be written", "table = \"input\"\naddress = 2\n", "writes[0].table"},
      {"poll-only keys are unknown on a write", "table = \"holding\"\naddress = 2\ngroup = \"alarm\"\n",
       "writes[0].group"},
      {"min above max", "table = \"holding\"\naddress = 2\nmin = 5\nmax = 1\n", "writes[0].max"},
  };
  for (const auto& c : cases) {
    auto r = parse_points(point + "[[writes]]\nname = \"y\"\n" + c.keys);
    INFO(c.why << "\n" << r.errors.format("p"));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.items()[0].path == c.path);
  }

  auto good =
      parse_points(point + "[[writes]]\nname = \"relay\"\ntable = \"coil\"\naddress = 1\nverify = true\n");
  INFO(good.errors.format("p"));
  REQUIRE(good.profile);
  REQUIRE(good.profile->writes.size() == 1);
  CHECK(good.profile->writes[0].target.type == data_type::boolean);
  CHECK(good.profile->writes[0].verify);
}

TEST_CASE("encode_registers is the inverse of decode_registers") {
  using regs = std::vector<std::uint16_t>;
  auto f = reg(data_type::float32, 0);
  f.words = word_order::little;
  regs out(2);
  REQUIRE_FALSE(encode_registers(f, 12.5, out));
  CHECK(out == regs{0x0000, 0x4148});
  CHECK(decode_registers(f, out).value == 12.5);

  auto t = reg(data_type::int16, 0);
  t.scale = 0.1;
  regs one(1);
  REQUIRE_FALSE(encode_registers(t, -10.0, one));
  CHECK(one[0] == 0xFF9C);
  CHECK(encode_registers(t, 4000.0, one) == modbus_errc::illegal_data_value);  // 40000 > int16
  CHECK(encode_registers(t, 0.05, one) == modbus_errc::illegal_data_value);    // not a whole raw value

  auto b = reg(data_type::bit, 0);
  b.bit = 4;
  regs word{0x8001};
  REQUIRE_FALSE(encode_registers(b, 1, word));
  CHECK(word[0] == 0x8011);  // the other bits kept
  REQUIRE_FALSE(encode_registers(b, 0, word));
  CHECK(word[0] == 0x8001);

  auto u = reg(data_type::uint32, 0);
  u.bytes = byte_order::little;
  regs two(2);
  REQUIRE_FALSE(encode_registers(u, 0x12345678, two));
  CHECK(two == regs{0x3412, 0x7856});
  CHECK(decode_registers(u, two).value == 0x12345678);
  CHECK(encode_registers(u, -1, two) == modbus_errc::illegal_data_value);
}

TEST_CASE(
    "profile [gb26875]: component types are read - an unknown point or a type out of range is refused") {
  const std::string points =
      "[[points]]\nname = \"leak\"\ntable = \"holding\"\naddress = 0\ntype = \"uint16\"\nunit = \"mA\"\n"
      "[[points]]\nname = \"setting\"\ntable = \"holding\"\naddress = 1\ntype = \"uint16\"\nunit = \"mA\"\n";
  const auto text = [](const parsed& p) {
    std::string out;
    for (const auto& e : p.errors.items()) out += e.path + ": " + e.message + "\n";
    return out;
  };
  auto ok = parse_points(points + "[gb26875]\ncomponent_type = 17\n[gb26875.points]\nsetting = 0\n");
  INFO(text(ok));
  REQUIRE(ok.profile);
  // Plain numbers for the uplink to read: the device's type, and 0 for a point kept from the centre.
  CHECK(ok.profile->annotations.at("gb26875") ==
        annotation_table{{"component_type", 17}, {"point.setting", 0}});
  auto unknown = parse_points(points + "[gb26875.points]\nleek = 18\n");
  CHECK_FALSE(unknown.profile);
  CHECK(text(unknown).find("gb26875.points.leek: is not a point of this profile; did you mean \"leak\"?") !=
        std::string::npos);
  auto range = parse_points(points + "[gb26875]\ncomponent_type = 0\n");
  CHECK_FALSE(range.profile);
  CHECK(text(range).find("gb26875.component_type: 0 is outside 1–255") != std::string::npos);
}

TEST_CASE("a site profile replaces the shipped one of its name - the others stay shipped") {
  test::temp_dir site;
  const auto shipped = std::filesystem::path(test::source_dir()) / "config/profiles/modbus";
  auto text = test::read_text(shipped / "sd-1.toml");
  const auto at = text.find("description = ");
  REQUIRE(at != std::string::npos);
  text.replace(at, text.find('\n', at) - at, "description = \"SD-1 with the site's own register map\"");
  std::ofstream(site / "sd-1-site.toml") << text;

  config::config_errors errors;
  const auto library = load_profiles(std::vector<std::filesystem::path>{site.path(), shipped}, errors);
  INFO(errors.format("profiles"));
  CHECK(errors.size() == 0);
  REQUIRE(library.contains("SD-1"));
  CHECK(library.at("SD-1")->description == "SD-1 with the site's own register map");
  CHECK(library.contains("EFD-4T"));  // from the shipped folder
  CHECK(library.contains("RL-2"));

  config::config_errors missing_site;  // a site folder that does not exist: the shipped ones alone
  const auto shipped_only =
      load_profiles(std::vector<std::filesystem::path>{site / "nope", shipped}, missing_site);
  CHECK(missing_site.size() == 0);
  CHECK(shipped_only.at("SD-1")->description != "SD-1 with the site's own register map");

  config::config_errors neither;  // neither folder: one error naming both
  CHECK(load_profiles(std::vector<std::filesystem::path>{site / "nope", site / "nor"}, neither).empty());
  const auto text_of = neither.format("x");
  CHECK(text_of.find("no such folder, nor " + (site / "nor").string()) != std::string::npos);
}
