// The clock watch (app/clock_watch.hpp): when clock_unsynchronised is due and when its end is, with
// the kernel's reading given by hand; the kernel's own reading is checked against adjtimex read by
// Python in the system test (tests/system/test_clock.cpp).

#include "app/clock_watch.hpp"

#include <catch2/catch.hpp>

using namespace firegate;
using namespace std::chrono_literals;

namespace {

struct fake_clock_state {
  clock_reading now{true, 5000, 1000, {}, "adjtimex", false};
  clock_watch watch() {
    return clock_watch([this] { return now; });
  }
};

clock_reading unsynchronised() {
  return {false, 16'000'000, 16'000'000, {}, "adjtimex", false};
}

}  // namespace

TEST_CASE("clock watch: unsynchronised for the set time raises one fault, ended once synchronised") {
  fake_clock_state k;
  auto w = k.watch();
  const auto t0 = std::chrono::steady_clock::time_point(100s);
  CHECK(w.check(t0, 60s) == clock_watch::due::nothing);
  CHECK(w.synchronised() == true);
  k.now = unsynchronised();
  CHECK(w.check(t0 + 10s, 60s) == clock_watch::due::nothing);
  CHECK(w.synchronised() == false);
  REQUIRE(w.unsynchronised_since());
  CHECK(w.check(t0 + 69s, 60s) == clock_watch::due::nothing);  // 59 s unsynchronised
  CHECK(w.unsynchronised_for(t0 + 69s) == 59s);
  REQUIRE(w.check(t0 + 70s, 60s) == clock_watch::due::fault);
  w.fault_id = "f-1";
  // Raised once: the fault stays open while it lasts.
  CHECK(w.check(t0 + 500s, 60s) == clock_watch::due::nothing);
  k.now = {true, 20'000, 100, {}, "adjtimex", false};
  CHECK(w.check(t0 + 510s, 60s) == clock_watch::due::recovery);
  CHECK_FALSE(w.unsynchronised_since());
  CHECK(w.unsynchronised_for(t0 + 510s) == 0s);
}

TEST_CASE("clock watch: synchronised again before the set time raises nothing, and the count starts over") {
  fake_clock_state k;
  auto w = k.watch();
  const auto t0 = std::chrono::steady_clock::time_point(100s);
  k.now = unsynchronised();
  CHECK(w.check(t0, 60s) == clock_watch::due::nothing);
  k.now = {true, 5000, 10, {}, "adjtimex", false};
  CHECK(w.check(t0 + 50s, 60s) == clock_watch::due::nothing);  // no fault open: no recovery either
  k.now = unsynchronised();
  CHECK(w.check(t0 + 55s, 60s) == clock_watch::due::nothing);
  CHECK(w.check(t0 + 114s, 60s) == clock_watch::due::nothing);  // 59 s of this spell
  CHECK(w.check(t0 + 115s, 60s) == clock_watch::due::fault);
}

TEST_CASE("clock watch: zero raises no fault - a clock that cannot be read changes nothing") {
  fake_clock_state k;
  auto w = k.watch();
  const auto t0 = std::chrono::steady_clock::time_point(100s);
  k.now = unsynchronised();
  CHECK(w.check(t0, 0s) == clock_watch::due::nothing);
  CHECK(w.check(t0 + 100000s, 0s) == clock_watch::due::nothing);
  // A fault left open at the last stop (restored from the store) and a clock that cannot be read:
  // neither raised again nor ended.
  w.fault_id = "f-restored";
  k.now = {std::nullopt, 0, 0, "adjtimex: Operation not permitted", "adjtimex", false};
  CHECK(w.check(t0 + 100001s, 60s) == clock_watch::due::nothing);
  CHECK_FALSE(w.synchronised());
  CHECK(w.last().error == "adjtimex: Operation not permitted");
  // Read again and synchronised: the restored fault ends, even with the fault turned off.
  k.now = {true, 5000, 10, {}, "adjtimex", false};
  CHECK(w.check(t0 + 100002s, 0s) == clock_watch::due::recovery);
}
