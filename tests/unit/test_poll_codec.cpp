// A poll row's packed values (store/poll_codec.cpp) against the format written in docs/storage.md,
// "Readings": the bytes of its worked example, byte by byte, and lossless reading back of any
// double, bit for bit.

#include "store/poll_codec.hpp"

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace firegate;

namespace {

std::string packed(const std::vector<std::pair<double, quality>>& values) {
  std::string out;
  for (const auto& [v, q] : values) poll_codec::append(out, v, q);
  return out;
}

std::uint64_t bits(double v) {
  return std::bit_cast<std::uint64_t>(v);
}

}  // namespace

TEST_CASE("poll values: docs/storage.md's worked example, byte by byte") {
  // An SD-1 poll: state 0, smoke 0.05 dB/m, temperature 21.5 °C, supply 24 V.
  CHECK(packed({{0, quality::good}, {0.05, quality::good}, {21.5, quality::good}, {24, quality::good}}) ==
        std::string("\x00\x52\xF1\xAE\x03\xF0\x30", 7));
  // -5.5 (one place, zigzag 109), 3 with a bad quality, 0.1234567 (seven places: a raw double).
  CHECK(packed({{-5.5, quality::good}}) == std::string("\xF1\x6D", 2));
  CHECK(packed({{3, quality::bad}}) == std::string("\x38", 1));
  CHECK(packed({{0.1234567, quality::good}}) == std::string("\x07\x72\xDA\xF8\xB8\xDB\x9A\xBF\x3F", 9));
  CHECK(bits(0.1234567) == 0x3FBF9ADBB8F8DA72ULL);  // the same bytes, little-endian
}

TEST_CASE("poll values: any double reads back bit for bit, with its quality") {
  std::vector<double> values{0.0,
                             -0.0,
                             1.0,
                             14.0,
                             15.0,
                             -1.0,
                             0.3,
                             0.1 + 0.2,  // not the decimal 0.3: must not come back as it
                             65.3,
                             653 * 0.1,  // what a register scaled by multiplying gives
                             1e-7,
                             123456.789012,
                             9007199254740991.0,
                             9007199254740993.0,
                             -9007199254740991.0,
                             1e300,
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::max(),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN(),
                             -std::numeric_limits<double>::quiet_NaN()};
  std::mt19937_64 random(23);
  for (int i = 0; i < 20000; ++i) values.push_back(std::bit_cast<double>(random()));
  for (int raw = -70000; raw <= 70000; raw += 7) {
    for (double scale : {1.0, 0.1, 0.01, 0.001}) values.push_back(raw * scale);
    for (double divisor : {10.0, 100.0, 1000.0, 1e6}) values.push_back(raw / divisor);
  }
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    poll_codec::append(out, values[i], i % 3 == 0 ? quality::bad : quality::good);
  }
  std::string_view in(out);
  for (std::size_t i = 0; i < values.size(); ++i) {
    double v = 0;
    quality q{};
    REQUIRE(poll_codec::next(in, v, q));
    INFO("value " << i << " = " << values[i]);
    CHECK(bits(v) == bits(values[i]));
    CHECK(q == (i % 3 == 0 ? quality::bad : quality::good));
  }
  CHECK(in.empty());
}

TEST_CASE("poll values: a damaged row stops the reading where it is cut, without reading past it") {
  const auto whole = packed({{21.5, quality::good}, {0.1234567, quality::good}});
  for (std::size_t cut = 0; cut < whole.size(); ++cut) {
    std::string_view in(whole.data(), cut);
    double v = 0;
    quality q{};
    if (cut >= 3) {
      REQUIRE(poll_codec::next(in, v, q));
      CHECK(v == 21.5);
    }
    const auto left = in;
    CHECK_FALSE(poll_codec::next(in, v, q));
    CHECK(in.data() == left.data());  // nothing consumed
  }
  // A varint that never ends (every byte has its high bit set).
  std::string_view endless("\xF0\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 12);
  double v = 0;
  quality q{};
  CHECK_FALSE(poll_codec::next(endless, v, q));
}
