// The metrics' own parts (docs/metrics.md): the latency histogram's buckets, and the exposition the
// application builds, checked line by line as Prometheus's text format writes them. The endpoint and
// promtool's verdict are tests/system/test_metrics.cpp.

#include "app/metrics.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace firegate;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l == line) return true;
  }
  return false;
}

}  // namespace

TEST_CASE(
    "latency histogram: a time falls in the first bucket whose bound holds it - past every bound, +Inf") {
  latency_histogram h;
  h.observe(0.001s);   // on a bound: that bucket (le is "less than or equal")
  h.observe(0.0011s);  // just over: the next
  h.observe(30s);      // 10 < 30 <= 60
  h.observe(3600s);    // past every bound
  h.observe(-2s);      // the wall clock stepped back: 0
  CHECK(h.count == 5);
  CHECK(h.counts[0] == 2);  // 0.001 and the negative one
  CHECK(h.counts[1] == 1);
  CHECK(h.counts[latency_histogram::bounds.size() - 1] == 1);
  CHECK(h.counts[latency_histogram::bounds.size()] == 1);
  CHECK(h.sum == Approx(0.001 + 0.0011 + 30 + 3600));
}

TEST_CASE(
    "metrics text: every event type from the start - raised ones counted - an alarm's stages cumulative") {
  config::gateway_file site;
  site.gateway.id = "gw-1";
  site.site.id = "site \"A\"";  // a quote in a label value is escaped, not a broken line
  gateway_health health;
  health.time = clock::now();
  health.started = health.time - 60s;
  health.config.revision = "abc";
  health.config.loaded = health.started;
  health.alarms.fire = 1;
  gateway_metrics m;
  event fire;
  fire.kind = event_kind::fire_alarm;
  fire.time = health.time - 30ms;
  m.raised(fire, health.time);       // 30 ms after its reading: the 50 ms bucket
  m.stored(fire, health.time + 1s);  // ~1.03 s: the 2.5 s bucket
  event test_fire = fire;
  test_fire.test = true;
  m.raised(test_fire, health.time);  // counted as an event, not in the latency
  event ack;
  ack.kind = event_kind::alarm_acknowledged;  // timed from a person's decision, not a reading
  ack.time = health.time - 10min;
  m.raised(ack, health.time);
  m.stored(ack, health.time);
  m.reloaded(false);
  gateway_metrics::store_view store;
  store.used_bytes = 4096;
  const auto text = m.text({site, health, {}, {}, store, nullptr});
  INFO(text);
  CHECK(has_line(text, "# TYPE firegate_events_total counter"));
  CHECK(has_line(text, R"(firegate_events_total{type="fire_alarm",category="fire"} 2)"));
  // The last kind too, at 0: a rate() over a type that never happened is 0, not absent.
  CHECK(text.find("firegate_events_total{type=\"clock_sync_refused\",category=\"") != std::string::npos);
  CHECK(has_line(text, R"(firegate_alarm_latency_seconds_count{stage="decided"} 1)"));
  CHECK(has_line(text, R"(firegate_alarm_latency_seconds_bucket{stage="decided",le="0.025"} 0)"));
  CHECK(has_line(text, R"(firegate_alarm_latency_seconds_bucket{stage="decided",le="0.05"} 1)"));
  CHECK(has_line(text, R"(firegate_alarm_latency_seconds_bucket{stage="decided",le="+Inf"} 1)"));
  CHECK(has_line(text, R"(firegate_alarm_latency_seconds_bucket{stage="stored",le="1"} 0)"));
  CHECK(has_line(text, R"(firegate_alarm_latency_seconds_bucket{stage="stored",le="2.5"} 1)"));
  CHECK(has_line(text, R"(firegate_config_reloads_total{outcome="refused"} 1)"));
  CHECK(has_line(text, R"(firegate_alarms_open{category="fire"} 1)"));
  CHECK(has_line(text, "firegate_store_used_bytes 4096"));
  CHECK(has_line(text, "firegate_store_readable 1"));
  CHECK(has_line(text, R"(firegate_alarm_latency_seconds_count{stage="stored"} 1)"));
  CHECK(has_line(text, R"(firegate_info{gateway="gw-1",site="site \"A\"",version=")" FIREGATE_VERSION
                       R"(",revision="abc"} 1)"));
  // No store figures it could not read: the evictions were not given.
  CHECK(text.find("firegate_store_evicted") == std::string::npos);
}
