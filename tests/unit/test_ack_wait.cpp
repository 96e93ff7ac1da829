// The MQTT uplink's acknowledgement wait (daemon/uplink/mqtt/ack_wait.hpp): doubled by timeouts in
// a row up to its cap, halved by acknowledgements that came within ack_timeout_s, kept by slower
// ones, so that a slow link settles on a wait that carries its messages.

#include "uplink/mqtt/ack_wait.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono_literals;
using firegate::ack_wait;

TEST_CASE(
    "ack wait: doubled by each timeout in a row up to 5 minutes - ack_timeout_s over 300 s is its own cap") {
  ack_wait w;
  std::vector<long> seen;
  for (int i = 0; i < 8; ++i) {
    seen.push_back(static_cast<long>(w.current(10s).count()));
    w.timed_out(10s);
  }
  CHECK(seen == std::vector<long>{10, 20, 40, 80, 160, 300, 300, 300});
  ack_wait longest;
  longest.timed_out(600s);
  CHECK(longest.current(600s) == 600s);
  CHECK(longest.doublings() == 0);
}

TEST_CASE(
    "ack wait: a slow link keeps the wait that carries its messages - quick acknowledgements bring it back") {
  // 2G, ack_timeout_s = 10, each large message takes 15 s: one timeout, then every message goes
  // within the doubled wait, and no acknowledgement of 15 s takes the doubling back.
  ack_wait w;
  w.timed_out(10s);
  REQUIRE(w.current(10s) == 20s);
  for (int i = 0; i < 5; ++i) {
    w.acknowledged(15s, 10s);
    CHECK(w.current(10s) == 20s);
  }
  // The link recovers: acknowledgements within 10 s halve the wait back to ack_timeout_s, no lower.
  w.timed_out(10s);
  w.timed_out(10s);
  REQUIRE(w.current(10s) == 80s);
  w.acknowledged(2s, 10s);
  CHECK(w.current(10s) == 40s);
  w.acknowledged(10s, 10s);
  CHECK(w.current(10s) == 20s);
  w.acknowledged(100ms, 10s);
  w.acknowledged(100ms, 10s);
  CHECK(w.current(10s) == 10s);
  CHECK(w.doublings() == 0);
}
