// A wireless device's rate limit (drivers/mqtt/rate_limiter.hpp): a burst is taken whole, the excess
// is dropped but its latest message held, the held message is taken once the rate allows it, and a
// message taken in the meantime (newer) drops it.

#include "mqtt/rate_limiter.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using namespace std::chrono_literals;
using limiter = firegate::mqtt_ingest::rate_limiter<int>;

namespace {
const limiter::time_point t0{};
}

TEST_CASE("rate limiter: a burst is taken whole - the excess keeps only its latest message") {
  limiter l(2, 3, t0);  // 2 a second, 3 at once
  CHECK(l.arrive(1, t0) == 1);
  CHECK(l.arrive(2, t0) == 2);
  CHECK(l.arrive(3, t0) == 3);
  CHECK_FALSE(l.arrive(4, t0));
  CHECK_FALSE(l.arrive(5, t0));
  REQUIRE(l.holding());
  CHECK(l.held() == 5);
  CHECK(l.replaced() == 1);  // 4 gave way to 5
  // Not yet a token after 0.4 s at 2 a second.
  CHECK_FALSE(l.release(t0 + 400ms));
  CHECK(l.holding());
  // Half a second later there is one: the latest state is taken.
  CHECK(l.release(t0 + 500ms) == 5);
  CHECK_FALSE(l.holding());
  CHECK_FALSE(l.release(t0 + 10s));
}

TEST_CASE("rate limiter: a message taken while one is held drops the older held one") {
  limiter l(1, 1, t0);
  CHECK(l.arrive(1, t0) == 1);
  CHECK_FALSE(l.arrive(2, t0 + 100ms));
  CHECK(l.held() == 2);
  // A second later the next arrival has a token: it is newer than the held one, which must never be
  // taken after it.
  CHECK(l.arrive(3, t0 + 1100ms) == 3);
  CHECK_FALSE(l.holding());
  CHECK(l.replaced() == 1);
  CHECK_FALSE(l.release(t0 + 5s));
}

TEST_CASE("rate limiter: tokens refill up to the burst and no further") {
  limiter l(5, 4, t0);
  for (int i = 0; i < 4; ++i) CHECK(l.arrive(i, t0));
  CHECK_FALSE(l.arrive(99, t0));
  // An hour idle gives back 4 tokens, not 18,000.
  const auto later = t0 + 1h;
  int taken = 0;
  if (l.release(later)) ++taken;
  for (int i = 0; i < 10; ++i)
    if (l.arrive(100 + i, later)) ++taken;
  CHECK(taken == 4);
  CHECK(l.tokens() < 1.0);
}

TEST_CASE("rate limiter: a time earlier than the last one takes no tokens away") {
  limiter l(1, 2, t0 + 10s);
  CHECK(l.arrive(1, t0 + 10s));
  CHECK(l.arrive(2, t0 + 5s));  // the second token is still there
  CHECK_FALSE(l.arrive(3, t0 + 5s));
  CHECK(l.tokens() == Approx(0.0));
}
