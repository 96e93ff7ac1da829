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

TEST_CASE("link quality: exceptions and lost connections do not count - timeouts and CRC errors do") {
  link_quality q;
  CHECK(feed(q, make_error_code(modbus_errc::illegal_data_address), 100).empty());
  CHECK(q.failures() == 0);
  feed(q, {}, 12);
  CHECK(feed(q, make_error_code(modbus_errc::timeout), 4).empty());  // the window not yet full
  CHECK(feed(q, make_error_code(modbus_errc::crc_mismatch), 4) ==
        std::vector<quality_change>{quality_change::poor});
  CHECK(q.summary() == "8 of the last 20 polls failed (4 CRC errors, 4 timeouts)");
  // A lost connection is the bus's fault: not counted against the device.
  CHECK(feed(q, make_error_code(modbus_errc::connection_closed), 50).empty());
  CHECK(feed(q, std::make_error_code(std::errc::connection_refused), 50).empty());
  CHECK(q.failures() == 8);
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

// ---- outbox_order (daemon/uplink/outbox_order.hpp): a recovery after its alarm across a restart.

#include "uplink/outbox_order.hpp"

namespace {

firegate::outbox_item item_of(std::int64_t id, firegate::lane l) {
  firegate::outbox_item i;
  i.id = id;
  i.lane = l;
  return i;
}

std::vector<std::int64_t> ids_of(const std::vector<firegate::outbox_item>& items) {
  std::vector<std::int64_t> out;
  for (const auto& i : items) out.push_back(i.id);
  return out;
}

}  // namespace

TEST_CASE("outbox order: after a restart an event naming an earlier one waits for its lane to be read") {
  using firegate::lane;
  firegate::outbox_order order;
  // Before any read: a fresh alarm goes at once, a recovery waits; memory-held and telemetry never.
  CHECK_FALSE(order.must_wait(item_of(50, lane::alarm), false));
  CHECK(order.must_wait(item_of(51, lane::alarm), true));
  CHECK_FALSE(order.must_wait(item_of(-3, lane::alarm), true));
  CHECK_FALSE(order.must_wait(item_of(52, lane::telemetry), true));
  order.hold(item_of(53, lane::fault));
  order.hold(item_of(51, lane::alarm));
  // A read that asked for nothing proves nothing.
  CHECK(order.read({}, 0).empty());
  // A full read ending in the fault lane: the alarm lane is read to the end, the fault lane not.
  CHECK(ids_of(order.read({item_of(10, lane::alarm), item_of(11, lane::fault)}, 2)) ==
        std::vector<std::int64_t>{51});
  CHECK_FALSE(order.must_wait(item_of(54, lane::alarm), true));
  CHECK(order.must_wait(item_of(55, lane::fault), true));
  // A short read: every lane read to the end, the rest released oldest first.
  order.hold(item_of(55, lane::fault));
  CHECK(ids_of(order.read({item_of(12, lane::fault)}, 5)) == std::vector<std::int64_t>{53, 55});
  CHECK(order.held() == 0);
  CHECK_FALSE(order.must_wait(item_of(56, lane::fault), true));
}

TEST_CASE("outbox order: a failed read releases what is held and ends the holding") {
  using firegate::lane;
  firegate::outbox_order order;
  order.hold(item_of(7, lane::alarm));
  order.hold(item_of(5, lane::fault));
  CHECK(ids_of(order.read_failed()) == std::vector<std::int64_t>{5, 7});
  CHECK_FALSE(order.must_wait(item_of(8, lane::alarm), true));
}
