// The MQTT ingest inbox between Paho's thread and the loop: bounded, fair between topics, oversize
// payloads queued as their size only, and the loop told once per batch.

#include "mqtt/inbox.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace firegate;
using namespace firegate::mqtt_ingest;

namespace {
std::string fmt_battery(int v) {
  return "{\"battery\": " + std::to_string(v) + "}";
}
}  // namespace

TEST_CASE("the inbox gives each topic its share and tells the loop once") {
  inbox box({100, 1u << 20, 5, 64});
  const auto now = clock::now();
  CHECK(box.push("a/1", "{}", false, now));                        // first: the loop must be told
  CHECK_FALSE(box.push("a/1", "{}", false, now));                  // already told
  for (int i = 0; i < 10; ++i) box.push("a/1", "{}", false, now);  // a flood: 5 places at most
  CHECK(box.size() == 5);
  // Another topic still gets in.
  box.push("b/2", R"({"smoke":true})", false, now);
  CHECK(box.size() == 6);
  auto drops = box.take_drops();
  CHECK(drops == std::map<std::string, std::uint64_t>{{"a/1", 7}});
  CHECK(box.take_drops().empty());  // counted once

  bool more = true;
  auto first = box.take(4, more);
  CHECK(first.size() == 4);
  CHECK(more);
  auto rest = box.take(100, more);
  REQUIRE(rest.size() == 2);
  CHECK_FALSE(more);
  CHECK(rest.back().topic == "b/2");
  CHECK(rest.back().payload == R"({"smoke":true})");
  // Emptied: the next push tells the loop again, and a's share is free again.
  CHECK(box.push("a/1", "{}", false, now));
  for (int i = 0; i < 4; ++i) box.push("a/1", "{}", false, now);
  CHECK(box.take_drops().empty());
}

TEST_CASE("the inbox bounds messages and bytes and keeps only the size of a huge payload") {
  inbox box({3, 1000, 3, 16});
  const auto now = clock::now();
  box.push("t/1", std::string(100, 'x'), true, now);  // over the payload limit: size only
  bool more = false;
  auto m = box.take(1, more);
  REQUIRE(m.size() == 1);
  CHECK(m[0].payload.empty());
  CHECK(m[0].size == 100);
  CHECK(m[0].retained);
  // Three messages at most.
  for (int i = 0; i < 5; ++i) box.push("t/" + std::to_string(i), "{}", false, now);
  CHECK(box.size() == 3);
  CHECK(box.take_drops().size() == 2);
  box.take(10, more);
  // 1000 bytes at most (topic and payload).
  inbox small({100, 40, 100, 1000});
  CHECK(small.push("t", std::string(30, 'x'), false, now));
  small.push("t", std::string(30, 'x'), false, now);
  CHECK(small.size() == 1);
}

TEST_CASE("the inbox takes pushes from another thread while the loop drains") {
  inbox box({100000, 64u << 20, 100000, 1024});
  std::thread paho([&] {
    for (int i = 0; i < 20000; ++i) box.push("t/" + std::to_string(i % 10), "{}", false, clock::now());
  });
  std::size_t taken = 0;
  bool more = false;
  while (taken < 20000) taken += box.take(256, more).size();
  paho.join();
  CHECK(taken == 20000);
  CHECK(box.size() == 0);
  CHECK(box.take_drops().empty());
}

TEST_CASE(
    "a topic over its share keeps its latest message - the one it replaces is the one counted dropped") {
  // A sensor that floods and then reports a new state: that state must reach the loop, or the
  // gateway would keep a stale value for as long as the sensor stays quiet afterwards.
  inbox box({100, 1u << 20, 3, 64});
  const auto now = clock::now();
  for (int i = 0; i < 10; ++i) box.push("a/1", fmt_battery(i), false, now);
  box.push("b/2", R"({"smoke":true})", false, now);
  CHECK(box.size() == 4);
  CHECK(box.take_drops() == std::map<std::string, std::uint64_t>{{"a/1", 7}});
  bool more = false;
  const auto all = box.take(100, more);
  REQUIRE(all.size() == 4);
  // The first two as they came, the third place holds the newest; the other topic untouched.
  CHECK(all[0].payload == fmt_battery(0));
  CHECK(all[1].payload == fmt_battery(1));
  CHECK(all[2].payload == fmt_battery(9));
  CHECK(all[3].payload == R"({"smoke":true})");

  // The whole queue full: a topic with a message waiting replaces it, a topic without any is dropped.
  inbox full({2, 1u << 20, 10, 64});
  full.push("a/1", fmt_battery(1), false, now);
  full.push("b/2", fmt_battery(2), false, now);
  full.push("a/1", fmt_battery(3), false, now);
  full.push("c/3", fmt_battery(4), false, now);
  CHECK(full.take_drops() == std::map<std::string, std::uint64_t>{{"a/1", 1}, {"c/3", 1}});
  const auto two = full.take(10, more);
  REQUIRE(two.size() == 2);
  CHECK(two[0].payload == fmt_battery(3));
  CHECK(two[1].payload == fmt_battery(2));

  // Bytes: a replacement larger than the room left is dropped, the waiting message kept.
  inbox tight({100, 40, 100, 1000});
  tight.push("t", std::string(10, 'x'), false, now);
  tight.push("u", std::string(10, 'y'), false, now);
  tight.push("t", std::string(30, 'z'), false, now);
  const auto kept = tight.take(10, more);
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].payload == std::string(10, 'x'));
}

TEST_CASE(
    "a loop that holds after a turn is not told of what comes meanwhile - a look that finds nothing ends "
    "the hold") {
  inbox box({100, 1u << 20, 100, 64});
  const auto now = clock::now();
  CHECK(box.push("a/1", "{}", false, now));
  bool more = true;
  CHECK(box.take(10, more, true).size() == 1);
  CHECK_FALSE(more);
  // Held: the loop looks again by itself, so these wake nobody.
  CHECK_FALSE(box.push("a/1", "{}", false, now));
  CHECK_FALSE(box.push("b/2", "{}", false, now));
  CHECK(box.take(10, more, true).size() == 2);
  // Still held (that look took some); the next finds nothing and ends it.
  CHECK(box.take(10, more, true).empty());
  CHECK(box.push("a/1", "{}", false, now));
  // A take that does not hold leaves the next push to tell the loop, as before.
  CHECK(box.take(10, more).size() == 1);
  CHECK(box.push("a/1", "{}", false, now));
}
