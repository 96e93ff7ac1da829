// The MQTT uplink's telemetry pace (daemon/uplink/mqtt/telemetry_pacing.hpp) with scripted times:
// a second's worth at once, then one message each 1/rate, never more than a second's worth saved.

#include "uplink/mqtt/telemetry_pacing.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using namespace std::chrono_literals;
using firegate::telemetry_pacing;

namespace {
const telemetry_pacing::time_point pace_t0 = telemetry_pacing::time_point{} + 1000h;
}

TEST_CASE("telemetry pacing: a second's worth at once - then one each 1/rate - the wait says when") {
  telemetry_pacing p(4);  // 4 messages a second
  for (int i = 0; i < 4; ++i) CHECK(p.take(pace_t0));
  CHECK_FALSE(p.take(pace_t0));
  CHECK(p.wait(pace_t0) == 250ms);
  CHECK_FALSE(p.take(pace_t0 + 249ms));
  const auto left = p.wait(pace_t0 + 249ms);  // 1 ms, give or take the nanosecond rounding up
  CHECK(left > 0ms);
  CHECK(left <= 2ms);
  CHECK(p.take(pace_t0 + 250ms));
  CHECK_FALSE(p.take(pace_t0 + 250ms));
  CHECK(p.wait(pace_t0 + 300ms) == 200ms);
}

TEST_CASE("telemetry pacing: a quiet while saves at most a second's worth - time going back takes nothing") {
  telemetry_pacing p(2);
  CHECK(p.take(pace_t0));
  CHECK(p.take(pace_t0));
  // An hour quiet: two at once again, not 7,200.
  const auto later = pace_t0 + 1h;
  CHECK(p.take(later));
  CHECK(p.take(later));
  CHECK_FALSE(p.take(later));
  // An earlier time (the caller's clock read before the last) adds no token.
  CHECK_FALSE(p.take(later - 10s));
  CHECK(p.wait(later) == 500ms);
}
