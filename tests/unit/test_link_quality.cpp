// A device's link quality over its last 20 polls (drivers/modbus/link_quality.hpp): poor from 8
// failures, good again at 2 or fewer, exceptions not counted, said once when the first window fills
// good (a fault restored at start can end), and again after a reset (the device went offline).

#include "modbus/link_quality.hpp"

#include <catch2/catch.hpp>

using firegate::modbus::link_quality;
using firegate::modbus::modbus_errc;
using quality_change = link_quality::change;

namespace {

/// Records `n` outcomes of `ec` and returns the changes said.
std::vector<quality_change> feed(link_quality& q, std::error_code ec, int n) {
  std::vector<quality_change> out;
  for (int i = 0; i < n; ++i) {
    if (auto c = q.record(ec); c != quality_change::none) out.push_back(c);
  }
  return out;
}

}  // namespace

TEST_CASE("link quality: half the polls malformed is poor once - clean polls make it good once") {
  link_quality q;
  // The first full window of good polls says good once (nothing else).
  CHECK(feed(q, {}, 19).empty());
  CHECK(feed(q, {}, 1) == std::vector<quality_change>{quality_change::good});
  CHECK(feed(q, {}, 40).empty());
  // Alternating: poor at the 8th failure in the window, said once.
  std::vector<quality_change> said;
  for (int i = 0; i < 40; ++i) {
    for (auto c : feed(q, i % 2 ? std::error_code{} : make_error_code(modbus_errc::transaction_mismatch), 1))
      said.push_back(c);
  }
  CHECK(said == std::vector<quality_change>{quality_change::poor});
  CHECK(q.poor());
  CHECK(q.summary() == "10 of the last 20 polls failed (10 malformed)");
  // Between the two marks it stays poor; at 2 failures in the window it is good again.
  CHECK(feed(q, {}, 14) == std::vector<quality_change>{});
  CHECK(feed(q, {}, 1) == std::vector<quality_change>{quality_change::good});
  CHECK_FALSE(q.poor());
  CHECK(q.summary() == "2 of the last 20 polls failed (2 malformed)");
}

TEST_CASE("link quality: exceptions are answers and do not count - timeouts and CRC errors do") {
  link_quality q;
  CHECK(feed(q, make_error_code(modbus_errc::illegal_data_address), 100).empty());
  CHECK(q.failures() == 0);
  feed(q, {}, 12);
  auto said = feed(q, make_error_code(modbus_errc::timeout), 4);
  said = feed(q, make_error_code(modbus_errc::crc_mismatch), 4);
  CHECK(said == std::vector<quality_change>{quality_change::poor});
  CHECK(q.summary() == "8 of the last 20 polls failed (4 CRC errors, 4 timeouts)");
}

TEST_CASE("link quality: after a reset the first good window is said again") {
  link_quality q;
  feed(q, {}, 20);
  feed(q, make_error_code(modbus_errc::malformed_frame), 8);
  REQUIRE(q.poor());
  q.reset();  // offline
  CHECK_FALSE(q.poor());
  CHECK(feed(q, {}, 20) == std::vector<quality_change>{quality_change::good});
  CHECK(q.summary() == "none of the last 20 polls failed");
}
