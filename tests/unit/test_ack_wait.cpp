// The MQTT uplink's acknowledgement wait (daemon/uplink/mqtt/ack_wait.hpp): doubled by each timeout
// up to its cap; each message timed from its own publish; a doubling taken back only after a calm
// spell of three times the wait, which an acknowledgement that needed more than half the wait, or a
// message in flight that long, starts again. Driven by the test's own clock.

#include "uplink/mqtt/ack_wait.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono_literals;
using firegate::ack_wait;

namespace {
const ack_wait::time_point wait_t0{std::chrono::hours(1)};
}

TEST_CASE("ack wait: doubled by each timeout up to 5 minutes - ack_timeout_s over 300 s is its own cap") {
  ack_wait w;
  std::vector<long> seen;
  for (int i = 0; i < 8; ++i) {
    seen.push_back(static_cast<long>(w.current(10s, wait_t0).count()));
    w.timed_out(10s, wait_t0);
  }
  CHECK(seen == std::vector<long>{10, 20, 40, 80, 160, 300, 300, 300});
  ack_wait longest;
  longest.timed_out(600s, wait_t0);
  CHECK(longest.current(600s, wait_t0) == 600s);
  CHECK(longest.doublings() == 0);
}

TEST_CASE("ack wait: each message is timed from its own publish, not from the previous acknowledgement") {
  ack_wait w;
  w.sent(1, 10s, wait_t0);
  w.sent(2, 10s, wait_t0 + 5s);
  w.sent(3, 10s, wait_t0 + 9s);
  // Acknowledged in order, one second apart: each took its own time since its publish.
  CHECK(w.acknowledged(1, 10s, wait_t0 + 11s) == 11s);
  CHECK(w.acknowledged(2, 10s, wait_t0 + 12s) == 7s);
  CHECK(w.acknowledged(3, 10s, wait_t0 + 13s) == 4s);
  CHECK(w.in_flight() == 0);
  // Not timed here (sent before a reconnect, or twice acknowledged): nothing to say.
  CHECK_FALSE(w.acknowledged(3, 10s, wait_t0 + 14s));
  w.sent(4, 10s, wait_t0 + 15s);
  w.forget(4);
  CHECK_FALSE(w.acknowledged(4, 10s, wait_t0 + 16s));
  w.sent(5, 10s, wait_t0 + 17s);
  w.forget_all();
  CHECK(w.in_flight() == 0);
}

TEST_CASE(
    "ack wait: a quick acknowledgement of a small message takes nothing back while a large one is slow") {
  // ack_timeout_s = 10 on 2G: a large alarm message takes 15 s, telemetry 1 s. One timeout doubles
  // the wait to 20 s; the quick telemetry acknowledgements around the large messages take nothing
  // back (the rule before this one halved the wait on each and made every large message time out).
  ack_wait w;
  w.timed_out(10s, wait_t0);
  REQUIRE(w.current(10s, wait_t0) == 20s);
  auto now = wait_t0;
  std::int64_t id = 0;
  for (int round = 0; round < 10; ++round) {
    w.sent(++id, 10s, now);  // the large one
    const auto large = id;
    for (int i = 0; i < 3; ++i) {  // small ones behind it, each acknowledged in a second
      w.sent(++id, 10s, now + std::chrono::seconds(4 * i));
      CHECK(w.acknowledged(id, 10s, now + std::chrono::seconds(4 * i + 1)) == 1s);
      CHECK(w.current(10s, now + std::chrono::seconds(4 * i + 1)) == 20s);
    }
    CHECK(w.acknowledged(large, 10s, now + 15s) == 15s);
    CHECK(w.current(10s, now + 15s) == 20s);
    now += 40s;  // the next large message comes before a calm spell of 60 s has passed
  }
  CHECK(w.doublings() == 1);
  CHECK(w.eased() == 0);
}

TEST_CASE("ack wait: a calm spell of three times the wait takes one doubling back, quiet or busy") {
  SECTION("a quiet site after a flapping spell comes back to ack_timeout_s with nothing sent") {
    ack_wait w;
    for (int i = 0; i < 5; ++i) w.timed_out(10s, wait_t0);
    REQUIRE(w.current(10s, wait_t0) == 300s);
    CHECK(w.current(10s, wait_t0 + 899s) == 300s);
    CHECK(w.current(10s, wait_t0 + 900s) == 160s);
    // 160 s: another 480 s, then 80 s (240), 40 s (120), 20 s (60) and 10 s: 1,800 s in all.
    CHECK(w.current(10s, wait_t0 + 900s + 479s) == 160s);
    CHECK(w.current(10s, wait_t0 + 1380s) == 80s);
    CHECK(w.current(10s, wait_t0 + 1799s) == 20s);
    CHECK(w.current(10s, wait_t0 + 1800s) == 10s);
    CHECK(w.doublings() == 0);
    CHECK(w.eased() == 5);
    // Read once after a long silence: every spell it covers is taken back at once.
    ack_wait late;
    for (int i = 0; i < 3; ++i) late.timed_out(10s, wait_t0);
    CHECK(late.current(10s, wait_t0 + 24h) == 10s);
  }
  SECTION("quick acknowledgements on a busy link keep the spell calm") {
    ack_wait w;
    w.timed_out(10s, wait_t0);
    for (int s = 0; s < 59; ++s) {
      w.sent(s, 10s, wait_t0 + std::chrono::seconds(s));
      w.acknowledged(s, 10s, wait_t0 + std::chrono::seconds(s) + 2s);  // within half the wait (10 s)
    }
    CHECK(w.current(10s, wait_t0 + 59s) == 20s);
    CHECK(w.current(10s, wait_t0 + 60s) == 10s);
  }
  SECTION("an acknowledgement that needed more than half the wait starts the spell again") {
    ack_wait w;
    w.timed_out(10s, wait_t0);
    w.sent(1, 10s, wait_t0 + 40s);
    w.acknowledged(1, 10s, wait_t0 + 51s);  // 11 s: more than 10 s, the wait one step down
    CHECK(w.current(10s, wait_t0 + 110s) == 20s);
    CHECK(w.current(10s, wait_t0 + 111s) == 10s);
  }
  SECTION("a message in flight for more than half the wait holds the spell") {
    ack_wait w;
    w.timed_out(10s, wait_t0);
    w.sent(1, 10s, wait_t0 + 45s);
    CHECK(w.current(10s, wait_t0 + 55s) == 20s);
    CHECK(w.current(10s, wait_t0 + 70s) == 20s);  // out for 25 s: the link may need the 20 s
    w.forget(1);
    CHECK(w.current(10s, wait_t0 + 70s) == 10s);
  }
  SECTION("a timeout during the spell starts it again, from the doubled wait") {
    ack_wait w;
    w.timed_out(10s, wait_t0);
    w.timed_out(10s, wait_t0 + 50s);
    CHECK(w.current(10s, wait_t0 + 169s) == 40s);
    CHECK(w.current(10s, wait_t0 + 170s) == 20s);
    CHECK(w.current(10s, wait_t0 + 230s) == 10s);
  }
}

TEST_CASE(
    "ack wait: a wait that eases does not cut short the deadline of a message sent under the longer one") {
  ack_wait w;
  w.timed_out(10s, wait_t0);
  REQUIRE(w.current(10s, wait_t0 + 55s) == 20s);
  w.sent(1, w.current(10s, wait_t0 + 55s), wait_t0 + 55s);  // under the doubled wait
  CHECK(w.current(10s, wait_t0 + 60s) == 10s);              // the spell is over; it has been out only 5 s
  CHECK(w.deadline(10s, wait_t0 + 60s) == 20s);
  w.acknowledged(1, 10s, wait_t0 + 62s);
  CHECK(w.deadline(10s, wait_t0 + 62s) == 10s);
}
