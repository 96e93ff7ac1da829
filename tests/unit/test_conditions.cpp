// Every condition kind of the alarm rules against its boundaries, as tables: a row is a spec and a
// script of samples and ticks, each with the change it must cause. Time is a fake monotonic clock
// (milliseconds from 0); readings' wall-clock times are not part of the interface at all.

#include "rules/condition.hpp"

#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <vector>

using namespace firegate;
using namespace firegate::rules;
using namespace std::chrono_literals;

namespace {

constexpr char tick = 't';

/// A sample (or a tick) at `ms` and what it must do: '.' nothing, 'R' raised, 'C' cleared.
struct step {
  int ms;
  double value;
  char expect;
  quality q = quality::good;
  char what = 's';  ///< 's' sample, 't' tick
};

struct row {
  std::string name;
  condition_spec spec;
  std::vector<step> steps;
};

condition_spec threshold(condition_kind which, double set, double clear) {
  condition_spec s;
  s.kind = which;
  s.set = set;
  s.clear = clear;
  return s;
}

condition_spec with_debounce(condition_spec s, std::chrono::milliseconds delay, unsigned samples) {
  s.delay = delay;
  s.samples = samples;
  return s;
}

void run(const row& r) {
  condition c(r.spec);
  const auto origin = mono::time_point(1h);  // any origin; only differences count
  std::string got, want;
  for (const auto& s : r.steps) {
    const auto now = origin + std::chrono::milliseconds(s.ms);
    const auto ch = s.what == tick ? c.on_tick(now) : c.on_sample(s.value, s.q, now);
    got += ch == change::raised ? 'R' : ch == change::cleared ? 'C' : '.';
    want += s.expect;
  }
  INFO(r.name);
  CHECK(got == want);
}

}  // namespace

TEST_CASE("conditions: thresholds with hysteresis - at - just under - just over - each edge") {
  const std::vector<row> rows{
      // Residual current: alarm at 300 mA, clears at 280 mA or below.
      {"high: just under the set point stays quiet",
       threshold(condition_kind::high, 300, 280),
       {{0, 299.9, '.'}, {1000, 0, '.'}}},
      {"high: at the set point raises", threshold(condition_kind::high, 300, 280), {{0, 300, 'R'}}},
      {"high: inside the hysteresis band it stays raised",
       threshold(condition_kind::high, 300, 280),
       {{0, 310, 'R'}, {1000, 299, '.'}, {2000, 280.1, '.'}, {3000, 280, 'C'}}},
      {"high: a value rising into the band does not raise",
       threshold(condition_kind::high, 300, 280),
       {{0, 285, '.'}, {1000, 299.9, '.'}, {2000, 300, 'R'}}},
      {"high without hysteresis clears just under the set point",
       threshold(condition_kind::high, 300, 300),
       {{0, 300, 'R'}, {1000, 300, '.'}, {2000, 299.99, 'C'}}},
      // Supply voltage: low at 20 V, clears at 21 V or above.
      {"low: at the set point raises, clears at the clear point",
       threshold(condition_kind::low, 20, 21),
       {{0, 20.5, '.'}, {1000, 20, 'R'}, {2000, 20.9, '.'}, {3000, 21, 'C'}}},
      {"a bad value decides nothing: the state stays",
       threshold(condition_kind::high, 300, 280),
       {{0, 400, 'R'},
        {1000, 0, '.', quality::bad},
        {2000, std::numeric_limits<double>::quiet_NaN(), '.'},
        {3000, 100, 'C'}}},
  };
  for (const auto& r : rows) run(r);
}

TEST_CASE("conditions: debounce by time and by samples - just under and just over") {
  const auto high = threshold(condition_kind::high, 300, 280);
  const std::vector<row> rows{
      {"5 s: held 4.999 s is not enough",
       with_debounce(high, 5s, 1),
       {{0, 350, '.'}, {2000, 350, '.'}, {4999, 350, '.'}, {5500, 0, '.'}}},
      {"5 s: held 5 s raises",
       with_debounce(high, 5s, 1),
       {{0, 350, '.'}, {2500, 350, '.'}, {5000, 350, 'R'}}},
      {"5 s: a dip below the set point restarts the count (hysteresis does not count before raising)",
       with_debounce(high, 5s, 1),
       {{0, 350, '.'}, {3000, 290, '.'}, {4000, 350, '.'}, {8999, 350, '.'}, {9000, 350, 'R'}}},
      {"5 s: completes on a tick between samples",
       with_debounce(high, 5s, 1),
       {{0, 350, '.'},
        {4999, 0, '.', quality::good, tick},
        {5000, 0, 'R', quality::good, tick},
        {6000, 0, '.', quality::good, tick}}},
      {"3 samples: 2 are not enough",
       with_debounce(high, 0s, 3),
       {{0, 350, '.'}, {100, 350, '.'}, {200, 10, '.'}}},
      {"3 samples: the third raises",
       with_debounce(high, 0s, 3),
       {{0, 350, '.'}, {100, 350, '.'}, {200, 350, 'R'}}},
      {"3 samples and 1 s: both needed",
       with_debounce(high, 1s, 3),
       {{0, 350, '.'}, {10, 350, '.'}, {20, 350, '.'}, {999, 350, '.'}, {1000, 350, 'R'}}},
      {"a tick does not stand in for missing samples",
       with_debounce(high, 1s, 3),
       {{0, 350, '.'}, {5000, 0, '.', quality::good, tick}, {5001, 350, '.'}, {5002, 350, 'R'}}},
  };
  for (const auto& r : rows) run(r);
}

TEST_CASE("conditions: state values and status bits") {
  condition_spec fire;
  fire.kind = condition_kind::equals;
  fire.values = {1};
  condition_spec fault;
  fault.kind = condition_kind::equals;
  fault.values = {2, 3};
  condition_spec arc;  // EFD-4T alarm word bit 8: arc fault
  arc.kind = condition_kind::bit;
  arc.bit = 8;
  const std::vector<row> rows{
      {"SD-1 state 1 is fire; 4 (test) is not",
       fire,
       {{0, 0, '.'}, {1, 4, '.'}, {2, 1, 'R'}, {3, 1, '.'}, {4, 0, 'C'}}},
      {"SD-1 states 2 and 3 are faults", fault, {{0, 1, '.'}, {1, 2, 'R'}, {2, 3, '.'}, {3, 0, 'C'}}},
      {"bit 8 of the alarm word",
       arc,
       {{0, 0x00FF, '.'}, {1, 0x0100, 'R'}, {2, 0x8100, '.'}, {3, 0x80FF, 'C'}, {4, 0xFFFF, 'R'}}},
  };
  for (const auto& r : rows) run(r);
}

TEST_CASE(
    "conditions: rate of rise across missing samples - not from one sample - a gap longer than the window") {
  condition_spec ror;  // cable temperature: 10 °C a minute over a minute
  ror.kind = condition_kind::rate_of_rise;
  ror.per_minute = 10;
  ror.window = 60s;
  ror.min_span = 10s;
  const std::vector<row> rows{
      {"9.9 °C a minute stays quiet", ror, {{0, 20, '.'}, {30000, 24.95, '.'}, {60000, 29.9, '.'}}},
      {"10 °C a minute raises", ror, {{0, 20, '.'}, {30000, 25, 'R'}}},
      {"under the minimum span there is no rate yet", ror, {{0, 20, '.'}, {9999, 30, '.'}, {10000, 30, 'R'}}},
      // Polls every 5 s with the ones at 10–35 s lost: the rate is over the time the samples span.
      {"missing samples: the rate is over the time spanned",
       ror,
       {{0, 20, '.'}, {5000, 20.5, '.'}, {40000, 27, 'R'}}},
      {"the rise levels off: it clears", ror, {{0, 20, '.'}, {30000, 26, 'R'}, {60000, 27, 'C'}}},
      // After a gap longer than the window only the new sample is left: no rate, no decision.
      {"a gap longer than the window decides nothing",
       ror,
       {{0, 20, '.'}, {120000, 60, '.'}, {125000, 60, '.'}, {135000, 61, '.'}}},
  };
  for (const auto& r : rows) run(r);
  condition c(ror);
  c.on_sample(20, quality::good, mono::time_point(0s));
  c.on_sample(35, quality::good, mono::time_point(60s));
  CHECK(c.value() == Approx(15.0));  // the rate, in units a minute, for the alarm's text
}

TEST_CASE("conditions: unusable values and stale data") {
  condition_spec probe;  // EFD-4T temperature 0x7FFF: the driver reports it as bad quality
  probe.kind = condition_kind::bad_quality;
  condition_spec stale;
  stale.kind = condition_kind::stale;
  stale.stale_after = 30s;
  const std::vector<row> rows{
      {"a probe open raises, a good value clears",
       probe,
       {{0, 21.5, '.'},
        {1000, 3276.7, 'R', quality::bad},
        {2000, 3276.7, '.', quality::bad},
        {3000, 21.5, 'C'}}},
      {"stale: 29.999 s without a good reading is not stale",
       stale,
       {{0, 1, '.'}, {29999, 0, '.', quality::good, tick}, {30000, 0, 'R', quality::good, tick}}},
      {"stale: bad readings do not keep it fresh; a good one clears",
       stale,
       {{0, 1, '.'}, {20000, 0, '.', quality::bad}, {30000, 0, 'R', quality::good, tick}, {31000, 1, 'C'}}},
      {"stale: a device never heard from goes stale from the first tick",
       stale,
       {{0, 0, '.', quality::good, tick}, {30000, 0, 'R', quality::good, tick}}},
  };
  for (const auto& r : rows) run(r);
}

TEST_CASE("conditions: the wall clock jumping does not move a debounce") {
  // The interface takes the monotonic time only; a reading's wall-clock time (which NTP or a
  // technician may set back an hour) is not an input. A 5 s debounce ends 5 s of monotonic time
  // after it started, whatever the readings' own times say.
  auto spec = with_debounce(threshold(condition_kind::high, 300, 280), 5s, 1);
  condition c(spec);
  const auto origin = mono::time_point(100s);
  reading r{"efd-1", "residual_current", 350, "mA", quality::good, clock::now()};
  CHECK(c.on_sample(r.value, r.q, origin) == change::none);
  r.time -= 1h;  // the wall clock is set back
  CHECK(c.on_sample(r.value, r.q, origin + 2s) == change::none);
  CHECK(c.on_sample(r.value, r.q, origin + 5s) == change::raised);
}
