// libFuzzer target: a wireless device's rate limit (drivers/mqtt/rate_limiter.hpp) driven by a
// script of arrivals and ticks at times the input picks. It checks what the ingest bus relies on:
// - over any window of time, no more messages are taken than burst + max_rate x window;
// - the held message is always the latest arrival, and only while that arrival was not taken;
// - a message is never taken after a newer one (ids rise with arrival), so a stale state never
//   overwrites a newer one;
// - every arrival is taken, held or replaced: none is lost unaccounted or taken twice;
// - a held message is released once a token has had time to come back.
// Input: a byte for max_rate (0.01 to 10,000 a second, as the config allows), one for burst, then
// steps of two bytes: an operation and a time step.

#include "fuzz_input.hpp"
#include "mqtt/rate_limiter.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>

namespace {

using limiter = firegate::mqtt_ingest::rate_limiter<std::uint64_t>;
using namespace std::chrono;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_rate_limiter: %s\n", what);
  std::abort();
}

struct checker {
  double rate;
  double burst;
  std::uint64_t arrivals{0};
  std::uint64_t taken_on_arrival{0};
  std::uint64_t released{0};
  std::optional<std::uint64_t> last_taken;
  bool last_arrival_taken{true};
  // The window bound, checked over every pair of takes i <= j in one pass: the takes i..j number
  // j - i + 1, which must not exceed burst + rate (t_j - t_i); that is, k - rate t_k may rise by
  // at most burst - 1 from any earlier take's value.
  std::uint64_t takes{0};
  double lowest{0};

  void taken(std::uint64_t id, double t) {
    if (last_taken && id <= *last_taken) fail("a message was taken after a newer one");
    last_taken = id;
    const double k = static_cast<double>(takes++);
    const double v = k - rate * t;
    if (takes == 1 || v < lowest) lowest = v;
    const double slack = 1e-6 * (1.0 + burst + rate * t);
    if (v - lowest > burst - 1.0 + slack) fail("more taken in a window than burst + rate x window");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  firegate::fuzz::cursor in{{data, size}};
  const double rate = 0.01 * std::pow(10.0, in.next() / 255.0 * 6.0);
  const std::uint8_t b = in.next();
  const double burst = b < 192 ? 1.0 + b % 64 : 1.0 + (b - 192) * 1000.0;
  const steady_clock::time_point t0{};
  steady_clock::time_point now = t0;
  limiter l(rate, burst, now);
  checker c{rate, burst};

  const auto seconds = [&] { return duration<double>(now - t0).count(); };
  while (!in.done()) {
    const std::uint8_t op = in.next();
    const std::uint64_t step = in.next();
    now += microseconds(step * step * step);  // 0 to 16.5 s, mostly short
    switch (op % 3) {
      case 0:
      case 1: {
        const std::uint64_t id = ++c.arrivals;
        if (auto m = l.arrive(id, now)) {
          if (*m != id) fail("arrive gave back another message");
          ++c.taken_on_arrival;
          c.last_arrival_taken = true;
          c.taken(id, seconds());
        } else {
          c.last_arrival_taken = false;
          if (!l.holding() || *l.held() != id) fail("an arrival over the rate is not the one held");
        }
        break;
      }
      case 2: {
        const bool was_holding = l.holding();
        auto m = l.release(now);
        if (m) {
          if (!was_holding) fail("released with nothing held");
          ++c.released;
          c.taken(*m, seconds());
        } else if (was_holding && (op & 0x80)) {
          // A token comes back within 1 / rate: a tick then must release what is held.
          now += microseconds(static_cast<std::int64_t>(std::ceil(1e6 / rate)) + 1);
          auto again = l.release(now);
          if (!again) fail("a held message was not released after 1 / max_rate");
          ++c.released;
          c.taken(*again, seconds());
        }
        break;
      }
    }
    if (l.holding() && (c.last_arrival_taken || *l.held() != c.arrivals))
      fail("the held message is not the latest arrival");
    if (c.arrivals != c.taken_on_arrival + c.released + l.replaced() + (l.holding() ? 1 : 0))
      fail("an arrival is neither taken, held nor replaced exactly once");
    if (l.tokens() > burst + 1e-9 || l.tokens() < -1e-9) fail("tokens outside 0 to burst");
  }
  return 0;
}
