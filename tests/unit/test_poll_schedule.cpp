// The Modbus bus's schedule (drivers/modbus/poll_schedule.hpp) with scripted times: fixed-rate polls
// that skip rather than burst when late, the alarm group and the full poll, the offline backoff and
// its bounds, the choice of the next device (of those due, the one asked longest ago; turns among
// equals), and a full poll giving way to the alarm reads on a bus behind schedule, over a line
// simulated exchange by exchange as the bus drives it.

#include "modbus/poll_schedule.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <random>
#include <vector>

using namespace std::chrono_literals;
using firegate::modbus::device_schedule;
using firegate::modbus::next_to_ask;
using time_point = device_schedule::time_point;
using turn = device_schedule::turn;

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

TEST_CASE(
    "poll schedule: of the devices due the one asked longest ago goes next - equals take turns - busy ones "
    "are skipped") {
  const auto now = origin + 10ms;
  std::vector<time_point> due{origin + 20ms, origin, origin + 5ms, origin + 1ms};
  std::vector<time_point> asked{origin - 100ms, origin - 50ms, origin - 80ms, origin - 50ms};
  std::vector<bool> busy(4, false);
  const auto next = [&](std::size_t last) {
    return next_to_ask(
        due.size(), last, now, [&](std::size_t i) { return due[i]; }, [&](std::size_t i) { return asked[i]; },
        [&](std::size_t i) { return busy[i]; });
  };
  // 1, 2 and 3 are due; 2 was asked longest ago, though 1 is the most overdue. 0, asked before
  // them all, is not due.
  REQUIRE(next(0));
  CHECK(next(0)->index == 2u);
  CHECK(next(0)->others_due);
  asked[2] = now;
  CHECK(next(0)->index == 1u);  // 1 and 3 asked at the same time: the first after the last asked
  CHECK(next(1)->index == 3u);  // then the other
  busy[1] = busy[2] = busy[3] = true;
  CHECK(next(3)->index == 0u);  // none due: the earliest due, 10 ms from now
  CHECK_FALSE(next(3)->others_due);
  busy = {false, true, true, false};
  CHECK(next(0)->index == 3u);
  CHECK_FALSE(next(0)->others_due);  // the only one due
  busy = {true, true, true, true};
  CHECK_FALSE(next(0));
}

TEST_CASE(
    "poll schedule: a due full poll gives way to other devices' alarm reads - one let through every "
    "give_way_max / (2 devices) - none for longer than its poll interval (10 s at least) - never first, on "
    "demand or offline") {
  // The bus as the device's turn sees it: nobody else due; behind schedule (others due, the bus not
  // idle since long before, a full read begun 1 ms before: with 32 devices one is let through every
  // 10 s / 64 = 156 ms).
  const auto alone = device_schedule::bus_view{false, time_point{}, time_point{}, 32};
  const auto behind = [](time_point now) {
    return device_schedule::bus_view{true, origin - 1h, now - 1ms, 32};
  };
  device_schedule d(500ms, 1000ms, true);
  d.start_at(origin);
  // Its first poll reads every point, others due or not: the platform has them all from the start.
  CHECK(d.take_turn(origin, false, behind(origin)) == turn::full);
  CHECK(d.take_turn(origin, false, alone) == turn::full);
  d.polled(origin, true);
  CHECK(d.take_turn(origin + 500ms, false, behind(origin + 500ms)) == turn::alarm_group);  // only it is due
  d.polled(origin + 500ms, false);
  // Both due, others too: the alarm group now, every point later.
  REQUIRE(d.full_at(origin + 1000ms, false));
  CHECK(d.take_turn(origin + 1000ms, false, behind(origin + 1000ms)) == turn::alarm_group);
  d.polled(origin + 1000ms, false);
  CHECK(d.due(false) == origin + 1500ms);  // its alarm group's grid, not the full poll's 1000
  CHECK(d.give_way_max() == 10s);
  // At a turn with nobody else due, the full poll it owes.
  CHECK(d.take_turn(origin + 1500ms, false, alone) == turn::full);
  // Others due, the bus's last full read 156 ms before or more: this one is let through.
  CHECK(d.take_turn(origin + 1500ms, false, {true, origin - 1h, origin + 1344ms, 32}) == turn::full);
  CHECK(d.take_turn(origin + 1500ms, false, {true, origin - 1h, origin + 1345ms, 32}) == turn::alarm_group);
  // Others due, but the bus was idle within the device's alarm interval: it has room, and a
  // neighbour due at the same moment is not a reason to give way.
  CHECK(d.take_turn(origin + 1500ms, false, {true, origin + 1000ms, origin + 1499ms, 32}) == turn::full);
  CHECK(d.take_turn(origin + 1500ms, false, {true, origin + 999ms, origin + 1499ms, 32}) ==
        turn::alarm_group);
  // Others due and full reads just let through: every point once 10 s late, not before.
  CHECK(d.take_turn(origin + 10999ms, false, behind(origin + 10999ms)) == turn::alarm_group);
  CHECK(d.take_turn(origin + 11000ms, false, behind(origin + 11000ms)) == turn::full);
  d.polled(origin + 11000ms, true);
  CHECK(d.due(false) == origin + 11500ms);
  // Every point due, the alarm group not (the full polls off its grid): not yet, and due again
  // at the alarm group's turn.
  device_schedule off_grid(500ms, 1000ms, true);
  off_grid.start_at(origin, 300ms);
  off_grid.polled(origin, true);            // next: alarm group 500, every point 1300
  off_grid.polled(origin + 1000ms, false);  // next: alarm group 1500
  CHECK(off_grid.due(false) == origin + 1300ms);
  CHECK(off_grid.take_turn(origin + 1300ms, false, behind(origin + 1300ms)) == turn::later);
  CHECK(off_grid.due(false) == origin + 1500ms);
  // A poll asked on demand reads every point whatever else is due; an offline device is tried in full.
  d.ask_now(origin + 12000ms);
  CHECK(d.take_turn(origin + 12000ms, false, behind(origin + 12000ms)) == turn::full);
  d.polled(origin + 12000ms, true);
  CHECK(d.take_turn(origin + 13000ms, true, behind(origin + 13000ms)) == turn::full);
  // A device without an alarm group reads every point at every turn.
  device_schedule plain(1000ms, 1000ms, false);
  plain.start_at(origin);
  CHECK(plain.take_turn(origin, false, behind(origin)) == turn::full);
  // A long poll interval gives way for that interval.
  CHECK(device_schedule(1250ms, 60s, true).give_way_max() == 60s);
}

namespace {

/// A line of `n` devices simulated exchange by exchange as the bus drives it (modbus_bus.cpp): the
/// next device from next_to_ask, what it reads from take_turn, the schedule moved on by polled. An
/// alarm-group read costs the line `alarm_cost`, a full one `full_cost`; a wait for a device to fall
/// due ends up to 50 us late, as a timer does (from a fixed seed).
struct line_run {
  struct read {
    std::size_t device;
    time_point started;
    bool full;
  };
  std::vector<read> reads;

  line_run(std::size_t n, std::chrono::milliseconds alarm, std::chrono::milliseconds poll,
           std::chrono::microseconds alarm_cost, std::chrono::microseconds full_cost,
           std::chrono::seconds length) {
    std::vector<device_schedule> devices(n, device_schedule(alarm, poll, true));
    const auto count = static_cast<std::int64_t>(n);
    for (std::size_t i = 0; i < n; ++i) {  // as bus::start
      const auto k = static_cast<std::int64_t>(i);
      devices[i].start_at(origin + alarm * k / count, (poll - alarm) * k / count);
    }
    auto now = origin;
    auto last_full = time_point{}, last_idle = origin;
    std::size_t last = n - 1;
    std::mt19937 wake(7);
    std::uniform_int_distribution<int> late_us(0, 50);
    while (now < origin + length) {
      const auto next = next_to_ask(
          n, last, now, [&](std::size_t i) { return devices[i].due(false); },
          [&](std::size_t i) { return devices[i].asked(); }, [](std::size_t) { return false; });
      auto& d = devices[next->index];
      if (d.due(false) > now) {
        last_idle = now;
        now = d.due(false) + std::chrono::microseconds(late_us(wake));
        continue;
      }
      const auto t = d.take_turn(now, false, {next->others_due, last_idle, last_full, n});
      if (t == turn::later) continue;
      if (t == turn::full) last_full = now;
      last = next->index;
      const bool full = t == turn::full;
      reads.push_back({next->index, now, full});
      d.polled(now, full);
      now += full ? full_cost : alarm_cost;
    }
  }
  /// The longest time between two reads of one device (either kind), from `from` on.
  std::chrono::microseconds longest_gap(time_point from, bool full_only) const {
    std::vector<time_point> previous(64, time_point{});
    std::chrono::microseconds longest{0};
    for (const auto& r : reads) {
      if (full_only && !r.full) continue;
      if (previous[r.device] >= from)
        longest = std::max(
            longest, std::chrono::duration_cast<std::chrono::microseconds>(r.started - previous[r.device]));
      previous[r.device] = r.started;
    }
    return longest;
  }
  double full_share() const {
    return static_cast<double>(
               std::count_if(reads.begin(), reads.end(), [](const read& r) { return r.full; })) /
           static_cast<double>(reads.size());
  }
};

}  // namespace

TEST_CASE(
    "poll schedule: an overloaded line reads every detector's alarm group once a turn - full polls give way, "
    "each still read within its poll interval and 10 s") {
  // 32 SD-1s at the shipped schedules (alarm group every 500 ms, every point every 1000 ms) ask
  // 230 % of a 9600-baud line and 131 % of a 19200-baud one (docs/rs485.md: an alarm-group
  // exchange 34.8 / 19.9 ms, a full one 37.1 / 21.0 ms). The alarm-group cycle is 32 of the first.
  // Read in full at every turn as before, a detector waited 32 full exchanges (1,187 ms at 9600
  // against the cycle's 1,113); most overdue first, at 19200 some waited more than one turn.
  struct line {
    std::chrono::microseconds alarm_cost, full_cost;
  };
  for (const auto& l : {line{34800us, 37100us}, line{19900us, 21000us}}) {
    INFO("alarm-group exchange " << l.alarm_cost.count() << " us");
    const line_run run(32, 500ms, 1000ms, l.alarm_cost, l.full_cost, 60s);
    const auto cycle = 32 * l.alarm_cost;
    const auto gap = run.longest_gap(origin + 2s, false);
    INFO("longest wait between two reads of one detector " << gap.count() << " us, the cycle "
                                                           << cycle.count());
    // The cycle, and the full reads let through in a turn: one every 10 s / 64 = 156 ms, 7 or 8 of
    // them (2.3 ms more each at 9600 baud, 1.1 at 19200).
    CHECK(gap <= cycle + 25ms);
    CHECK(run.full_share() < 0.25);
    // Every point still read: at most every poll interval + 10 s + one turn of the line.
    const auto full_gap = run.longest_gap(origin + 2s, true);
    INFO("longest wait between two full reads " << full_gap.count() << " us");
    CHECK(full_gap > 0us);
    CHECK(full_gap <= 11s + 32 * l.full_cost);
  }
}

TEST_CASE("poll schedule: a line with room reads every point on time - no full poll gives way") {
  // 4 to 12 SD-1s at the shipped schedules on a 9600-baud line (29-86 % of it) and a 19200-baud one.
  // The bus spreads their polls so that one device's full poll falls on another's alarm read: two
  // are due at one moment, and which goes first is the timer's chance. That is not a bus behind
  // schedule: each is read in full every 1000 ms (one exchange later when it waited for the other),
  // where a full poll giving way to every such neighbour waited 11 s.
  struct line {
    std::chrono::microseconds alarm_cost, full_cost;
  };
  for (const auto& l : {line{34800us, 37100us}, line{19900us, 21000us}}) {
    for (std::size_t n : {4, 5, 8, 10, 12}) {
      INFO(n << " devices, an alarm-group exchange " << l.alarm_cost.count() << " us");
      const line_run run(n, 500ms, 1000ms, l.alarm_cost, l.full_cost, 30s);
      CHECK(run.longest_gap(origin + 2s, true) <= 1000ms + l.full_cost + 50us);
      // The alarm group every 500 ms, one exchange later when another's read was in its slot.
      CHECK(run.longest_gap(origin + 2s, false) <= 500ms + l.full_cost + 50us);
      CHECK(run.full_share() == Approx(0.5).margin(0.01));
    }
  }
}
