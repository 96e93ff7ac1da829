// The Modbus bus's schedule (drivers/modbus/poll_schedule.hpp) with scripted times: fixed-rate polls
// that skip rather than burst when late, the alarm group and the full poll, the offline backoff and
// its bounds, and the choice of the next device (most overdue, turns among equals).

#include "modbus/poll_schedule.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono_literals;
using firegate::modbus::device_schedule;
using firegate::modbus::most_overdue;
using time_point = device_schedule::time_point;

namespace {
const time_point origin = time_point(std::chrono::hours(1));
}

TEST_CASE(
    "poll schedule: fixed rate - a poll a little late keeps the grid, one a whole interval late skips") {
  device_schedule d(1000ms, 1000ms, false);
  d.start_at(origin);
  CHECK(d.due(false) == origin);
  CHECK(d.full_at(origin, false));
  d.polled(origin + 300ms, true);  // late by 300 ms: the next stays on the grid
  CHECK(d.due(false) == origin + 1s);
  d.polled(origin + 3500ms, true);  // 2.5 s late: one interval from now, not three polls at once
  CHECK(d.due(false) == origin + 4500ms);
  CHECK(d.interval() == 1000ms);
}

TEST_CASE("poll schedule: the alarm group every alarm interval - every point every poll interval") {
  device_schedule d(250ms, 1000ms, true);
  d.start_at(origin);
  CHECK(d.full_at(origin, false));
  d.polled(origin, true);
  CHECK(d.due(false) == origin + 250ms);
  for (int i = 1; i <= 3; ++i) {
    const auto at = origin + i * 250ms;
    CHECK_FALSE(d.full_at(at, false));  // the alarm group only
    d.polled(at, false);
    CHECK(d.due(false) == at + 250ms);
  }
  CHECK(d.full_at(origin + 1000ms, false));  // a second on: every point
  d.polled(origin + 1000ms, true);
  CHECK(d.due(false) == origin + 1250ms);
  CHECK(d.interval() == 250ms);
  // Asked at once: every point, now.
  d.ask_now(origin + 1100ms);
  CHECK(d.due(false) == origin + 1100ms);
  CHECK(d.full_at(origin + 1100ms, false));
}

TEST_CASE("poll schedule: the second full poll is shifted once - later ones keep that grid") {
  // 32 devices on one line, alarm group every 1250 ms, every point every 10 s (docs/rs485.md): the
  // bus gives device i a shift of (10000 - 1250) * i / 32, so that device 16's full polls fall
  // 5 s after device 0's, not in the same alarm interval.
  device_schedule first(1250ms, 10000ms, true), middle(1250ms, 10000ms, true);
  first.start_at(origin, 0ms);
  middle.start_at(origin + 625ms, 4375ms);         // i = 16: 1250 * 16 / 32 and 8750 * 16 / 32
  REQUIRE(middle.full_at(origin + 625ms, false));  // the first poll still reads every point
  middle.polled(origin + 625ms, true);
  first.polled(origin, true);
  // Alarm polls on their grid until the shifted full poll: 625 + 10000 + 4375 = 15000 ms.
  auto t = origin + 625ms;
  int alarm_polls = 0;
  while (!middle.full_at(middle.due(false), false)) {
    t = middle.due(false);
    middle.polled(t, false);
    ++alarm_polls;
  }
  CHECK(middle.due(false) == origin + 15000ms);
  CHECK(alarm_polls == 11);  // 1875 ... 14375 ms
  middle.polled(origin + 15000ms, true);
  CHECK(middle.full_at(origin + 25000ms, false));  // every 10 s from there: the shift was once
  CHECK_FALSE(middle.full_at(origin + 24999ms, false));
  CHECK(first.full_at(origin + 10000ms, false));
  // The line dies and every device answers again within a few exchanges: their full polls keep
  // their spread (device 16's 4375 ms after device 0's), not all one interval from the return.
  first.back_online(origin + 60000ms);
  middle.back_online(origin + 60040ms);
  CHECK(first.full_at(origin + 70000ms, false));
  CHECK_FALSE(middle.full_at(origin + 74414ms, false));
  CHECK(middle.full_at(origin + 74415ms, false));
}

TEST_CASE("poll schedule: a full poll a little late keeps the alarm group's grid - as an alarm poll does") {
  // On a bus behind schedule (an RS-485 line with more than it can carry) every device is late.
  // Were a full poll to count the next alarm read from itself and an alarm poll from its grid, a
  // device just read for its alarm group would be due again before one just read in full, and some
  // detectors would wait more than one turn (tools/bench/rs485.py at 19200 baud: p99 921 ms against
  // a 637 ms cycle; 669-811 ms in four runs with both on the grid).
  device_schedule full(500ms, 1000ms, true), alarm(500ms, 1000ms, true);
  full.start_at(origin);
  alarm.start_at(origin);
  alarm.polled(origin, true);
  CHECK(alarm.due(false) == origin + 500ms);
  alarm.polled(origin + 800ms, false);  // its alarm group, 300 ms late
  CHECK(alarm.due(false) == origin + 1000ms);
  full.polled(origin + 300ms, true);  // every point, 300 ms late: the alarm group was due too
  CHECK(full.due(false) == origin + 500ms);
  // A full poll before the alarm group was due (the intervals are not multiples): from the poll.
  device_schedule uneven(300ms, 1000ms, true);
  uneven.start_at(origin);
  for (int i = 0; i < 4; ++i) uneven.polled(origin + i * 300ms, i == 0);
  CHECK(uneven.due(false) == origin + 1000ms);  // every point, 200 ms before the alarm group's turn
  REQUIRE(uneven.full_at(origin + 1000ms, false));
  uneven.polled(origin + 1000ms, true);
  CHECK(uneven.due(false) == origin + 1300ms);
}

TEST_CASE(
    "poll schedule: offline - first try after the poll interval (0.5 s at least), doubling to the cap") {
  device_schedule d(500ms, 200ms, true);
  d.went_offline(origin, 10s);
  CHECK(d.retry_delay() == 500ms);
  CHECK(d.due(true) == origin + 500ms);
  // An offline device is asked for every point, where online it would be its alarm group only.
  d.start_at(origin);
  d.polled(origin, true);
  CHECK_FALSE(d.full_at(origin + 100ms, false));
  CHECK(d.full_at(origin + 100ms, true));
  std::vector<long> delays;
  for (int i = 0; i < 6; ++i) {
    d.failed_again(origin, 10s);
    delays.push_back(static_cast<long>(d.retry_delay().count()));
  }
  CHECK(delays == std::vector<long>{1000, 2000, 4000, 8000, 10000, 10000});
  // Its neighbours' silence being told apart: tried by then at the latest.
  d.try_by(origin + 3s);
  CHECK(d.due(true) == origin + 3s);
  d.try_by(origin + 20s);  // later than its backoff: no change
  CHECK(d.due(true) == origin + 3s);
  d.retry_now(origin + 1s);
  CHECK(d.due(true) == origin + 1s);
  // It answers: back on its schedule from that poll, the backoff forgotten.
  d.back_online(origin + 2s);
  CHECK(d.retry_delay() == 0ms);
  CHECK(d.due(false) == origin + 2200ms);  // every point 200 ms on, before the alarm group's 500
  CHECK(d.full_at(origin + 2200ms, false));
  // A long poll interval is capped by offline_retry_max.
  device_schedule slow(1000ms, 60s, false);
  slow.went_offline(origin, 30s);
  CHECK(slow.retry_delay() == 30s);
}

TEST_CASE("poll schedule: hurrying a neighbour asks its alarm group now, or every point without one") {
  device_schedule grouped(500ms, 5s, true), plain(1000ms, 1000ms, false);
  grouped.start_at(origin + 400ms);
  grouped.polled(origin + 400ms, true);
  plain.start_at(origin + 700ms);
  grouped.hurry(origin + 100ms);
  plain.hurry(origin + 100ms);
  CHECK(grouped.due(false) == origin + 100ms);
  CHECK_FALSE(grouped.full_at(origin + 100ms, false));
  CHECK(plain.due(false) == origin + 100ms);
  CHECK(plain.full_at(origin + 100ms, false));
}

TEST_CASE("poll schedule: the most overdue goes next - equals take turns - busy ones are skipped") {
  std::vector<time_point> due{origin + 5ms, origin, origin, origin + 1ms};
  std::vector<bool> busy(4, false);
  const auto next = [&](std::size_t last) {
    return most_overdue(
        due.size(), last, [&](std::size_t i) { return due[i]; }, [&](std::size_t i) { return busy[i]; });
  };
  CHECK(next(3) == 1u);  // 1 and 2 equally due: the first after the last asked
  CHECK(next(1) == 2u);  // then the other
  CHECK(next(2) == 1u);
  busy[1] = true;
  CHECK(next(2) == 2u);
  busy = {true, true, true, true};
  CHECK_FALSE(next(0));
}
