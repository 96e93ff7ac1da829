// The reconnect backoff every link shares (daemon/domain/backoff.hpp), with scripted draws: the
// step doubles to its cap, each wait lies between half and all of the step, a success starts again.

#include "domain/backoff.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <vector>

using namespace std::chrono_literals;
using firegate::backoff;

namespace {

std::vector<long> waits(backoff& b, int n) {
  std::vector<long> out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<long>(b.next().count()));
  return out;
}

}  // namespace

TEST_CASE("backoff: the step doubles to its cap - a draw of 0 waits half of it, of 1 all of it") {
  backoff longest(500ms, 30s, [] { return 1.0; });
  CHECK(longest.step() == 500ms);
  CHECK(waits(longest, 8) == std::vector<long>{500, 1000, 2000, 4000, 8000, 16000, 30000, 30000});
  backoff shortest(1s, 60s, [] { return 0.0; });
  CHECK(waits(shortest, 8) == std::vector<long>{500, 1000, 2000, 4000, 8000, 16000, 30000, 30000});
  // A draw outside [0, 1] (a bad source) stays within the step.
  backoff wild(1s, 60s, [] { return 7.5; });
  CHECK(waits(wild, 2) == std::vector<long>{1000, 2000});
}

TEST_CASE("backoff: a success starts again from the first step") {
  backoff b(500ms, 30s, [] { return 1.0; });
  waits(b, 5);
  CHECK(b.step() == 16s);
  b.reset();
  CHECK(b.step() == 500ms);
  CHECK(b.next() == 500ms);
}

TEST_CASE("backoff: with the system's draws every wait is within its bounds and the waits spread") {
  backoff b(1s, 60s);
  std::set<long> seen;
  for (int i = 0; i < 200; ++i) {
    b.reset();
    const auto w = b.next();
    CHECK(w >= 500ms);
    CHECK(w <= 1s);
    seen.insert(static_cast<long>(w.count()));
  }
  // Boxes that lost the same peer come back spread over the half second, not in one instant.
  CHECK(seen.size() > 50);
}
