#pragma once
// When each device on a Modbus bus is asked next: plain arithmetic over the times the bus gives it
// (steady_clock's now in the daemon, any time a test likes), so that the schedule is tested without
// waiting on a clock.
//
// - A device whose profile has an alarm group (the points that decide fire, read fast) is asked for
//   that group every alarm_interval and for every point every poll_interval; a full poll counts as
//   an alarm poll too (and keeps the alarm group's grid when that was due as well). A device without one is
//   asked for every point every poll_interval.
// - Schedules are fixed-rate: the next time is one interval after the last due time, so polls keep
//   their grid; a device that fell a whole interval behind is asked one interval from now instead
//   (a late bus catches up by skipping, never by bursting).
// - An offline device is asked on a backoff of its own instead (each try costs a full timeout on a
//   line its neighbours share): from its poll interval (at least 0.5 s), doubling to a cap.
// - Of the devices due, the bus asks the one asked longest ago, so that on a bus behind schedule
//   every device is read once a turn of the bus, in turn, whatever its lateness; with none due, it
//   waits for the earliest. Among equals, the one after the last asked.
// - On a bus behind schedule, a due full poll gives way to the alarm reads. Behind schedule here:
//   another device is due too, and the bus last paused (waiting for a device to fall due) more than
//   one of this device's alarm intervals ago. Devices due at one moment on a bus with room are not
//   behind (the bus spreads their polls so that one device's full poll may fall on another's alarm
//   read). Then the device is read for its alarm group only, or not yet when that is not due.
// - The bus lets a full poll through at most once every `give_way_max` / (2 × its devices), enough
//   for every device's twice in that time, spread over the turns rather than all in one; and one
//   `give_way_max` late (its poll interval, at least 10 s) goes at its turn whatever the rest. So an
//   overloaded RS-485 line spends its time on the alarm groups, and every point is still read at
//   least every poll interval plus give_way_max and a turn (docs/rs485.md).
// - A bus at up to about 90 % of its time reads every point on time as before (an exchange late at
//   most); nearer its limit it may run an alarm interval without a pause now and then, and a full
//   poll then waits an alarm interval or two. An offline device, one without an alarm group, a
//   device's first poll and a poll asked on demand read every point whatever else is due.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>

namespace firegate::modbus {

class device_schedule {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using ms = std::chrono::milliseconds;

  device_schedule() = default;
  device_schedule(ms alarm_interval, ms poll_interval, bool alarm_group)
      : alarm_interval_(alarm_interval), poll_interval_(poll_interval), alarm_group_(alarm_group) {}

  /// The first poll (a full one) at `first`: the bus spreads its devices' over one alarm interval.
  /// `full_shift` moves the second full poll, and so the grid of every later one, that much later:
  /// the bus spreads its devices' full polls over the poll interval too, so that a line's alarm
  /// intervals each carry their share of them, not all in the same one.
  void start_at(time_point first, ms full_shift = ms(0)) {
    next_full_ = next_alarm_ = first;
    full_shift_ = full_offset_ = full_shift;
    full_owed_ = true;  // every point once at the start, whatever else is due
  }

  /// When the device is next due: its backoff's try when offline, else its earlier schedule (a full
  /// poll giving way is due once it may give way no longer).
  time_point due(bool offline) const {
    if (offline) return next_try_;
    if (!alarm_group_) return next_full_;
    return std::min(next_alarm_, giving_way_ ? next_full_ + give_way_max() : next_full_);
  }
  /// Whether every point is due at `started` (else the alarm group only).
  bool full_at(time_point started, bool offline) const {
    return offline || !alarm_group_ || full_owed_ || next_full_ <= started;
  }

  enum class turn { full, alarm_group, later };
  /// The bus as a device's turn sees it.
  struct bus_view {
    bool others_due;       ///< another device is due as well
    time_point last_idle;  ///< when the bus last waited for a device to fall due (with a worker free)
    time_point last_full;  ///< when the bus last began a full read of any device
    std::size_t devices;   ///< how many it has
  };
  /// What a poll begun at `started` reads, the device being due: every point when they are due and
  /// need not give way; else the alarm group when that is due; else nothing yet (`later`: its full
  /// poll gives way, and the device is due again at due()).
  turn take_turn(time_point started, bool offline, const bus_view& bus) {
    if (!full_at(started, offline)) return turn::alarm_group;
    const auto spacing = give_way_max() / (2 * std::max<std::size_t>(bus.devices, 1));
    const bool behind = bus.others_due && started - bus.last_idle > alarm_interval_;
    if (offline || !alarm_group_ || full_owed_ || !behind || started - bus.last_full >= spacing ||
        next_full_ + give_way_max() <= started)
      return turn::full;
    giving_way_ = true;
    return next_alarm_ <= started ? turn::alarm_group : turn::later;
  }
  /// How long a due full poll gives way to other devices' alarm reads at most.
  std::chrono::milliseconds give_way_max() const {
    return std::max<ms>(poll_interval_, std::chrono::seconds(10));
  }
  /// When its last poll began (the bus asks the device due that was asked longest ago).
  time_point asked() const { return asked_at_; }
  /// The interval a poll of this device is late against.
  ms interval() const { return alarm_group_ ? alarm_interval_ : poll_interval_; }

  /// A poll begun at `started` is done (answered or not): the schedules move on.
  void polled(time_point started, bool full) {
    asked_at_ = started;
    if (full) {
      giving_way_ = full_owed_ = false;
      next_full_ = advance(next_full_, poll_interval_, started) + std::exchange(full_shift_, ms(0));
      // It read the alarm points too. Were the alarm group due as well, its next read keeps the
      // grid, as after an alarm poll (one a whole interval late is asked one interval on): counted
      // from this read instead, a device just read in full would wait longer than one just read for
      // its alarm group, and on a bus behind schedule some would wait more than one turn. Were it
      // not due yet, the full poll read it early and its next read is one interval from now.
      next_alarm_ =
          next_alarm_ <= started ? advance(next_alarm_, alarm_interval_, started) : started + alarm_interval_;
    } else {
      next_alarm_ = advance(next_alarm_, alarm_interval_, started);
    }
  }
  /// It answers again after being offline (its poll began at `started`): back on its schedule,
  /// its full polls again its share of the poll interval later (a line's devices come back
  /// together after an outage; without it their full polls would all fall in one alarm interval).
  void back_online(time_point started) {
    next_full_ = started + poll_interval_ + full_offset_;
    full_shift_ = ms(0);
    next_alarm_ = started + alarm_interval_;
    retry_delay_ = ms(0);
    giving_way_ = false;
  }
  /// It answered.
  void answered() { retry_delay_ = ms(0); }

  /// It has just gone offline at `now`: first try after its poll interval (at least 0.5 s), capped.
  void went_offline(time_point now, ms retry_max) {
    retry_delay_ = std::min(std::max(poll_interval_, ms(500)), retry_max);
    next_try_ = now + retry_delay_;
  }
  /// Offline and failed again at `now`: twice as long before the next try, up to the cap.
  void failed_again(time_point now, ms retry_max) {
    retry_delay_ = std::min(retry_delay_ * 2, retry_max);
    next_try_ = now + retry_delay_;
  }
  /// Offline, tried at once (its bus came back).
  void retry_now(time_point now) { next_try_ = now; }
  /// Tried by `latest` at the latest, its backoff notwithstanding.
  void try_by(time_point latest) { next_try_ = std::min(next_try_, latest); }
  /// Asked at once, every point: a poll on demand (it never gives way).
  void ask_now(time_point now) {
    next_full_ = next_alarm_ = next_try_ = now;
    full_owed_ = true;
  }
  /// Its alarm group asked at once (every point when it has none): a neighbour's silence is being
  /// told apart from the bus's.
  void hurry(time_point now) {
    next_alarm_ = std::min(next_alarm_, now);
    if (!alarm_group_) next_full_ = std::min(next_full_, now);
  }
  /// The offline backoff's current step (0 while online).
  ms retry_delay() const { return retry_delay_; }

  /// The next time of a fixed-rate schedule: one interval on, or one interval from `now` when the
  /// schedule fell a whole interval behind.
  static time_point advance(time_point due, ms interval, time_point now) {
    due += interval;
    return due <= now ? now + interval : due;
  }

 private:
  ms alarm_interval_{1000}, poll_interval_{1000};
  bool alarm_group_{false};
  time_point next_alarm_{};  ///< when the alarm group is next due
  time_point next_full_{};   ///< when every point is next due
  ms full_shift_{0};         ///< added once, to the second full poll's time (start_at)
  ms full_offset_{0};        ///< the same shift, kept: a return from offline applies it again
  ms retry_delay_{0};        ///< offline: the backoff's step
  time_point next_try_{};    ///< offline: when it is tried next
  time_point asked_at_{};    ///< when its last poll began
  bool giving_way_{false};   ///< its full poll is due and gives way to other devices' alarm reads
  /// The first poll, or one asked on demand: it reads every point, whatever else is due.
  bool full_owed_{false};
};

/// The device to ask next among `count` (index 0 .. count - 1) at `now`, `last` the one asked last,
/// those `busy` (another worker is asking them) left out: of the devices due, the one `asked`
/// longest ago; with none due, the earliest due. Among equals, the first after `last`.
/// `others_due`: another device is due as well (one sign of a bus behind schedule: take_turn).
/// nullopt when every one is busy.
struct next_device {
  std::size_t index;
  bool others_due;
};
template <class Due, class Asked, class Busy>
std::optional<next_device> next_to_ask(std::size_t count, std::size_t last,
                                       std::chrono::steady_clock::time_point now, Due due, Asked asked,
                                       Busy busy) {
  std::optional<std::size_t> next;
  bool next_due = false;
  std::size_t due_count = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const auto i = (last + 1 + k) % count;
    if (busy(i)) continue;
    const auto when = due(i);
    const bool is_due = when <= now;
    due_count += is_due ? 1 : 0;
    if (!next || (is_due && (!next_due || asked(i) < asked(*next))) ||
        (!is_due && !next_due && when < due(*next))) {
      next = i;
      next_due = is_due;
    }
  }
  if (!next) return std::nullopt;
  return next_device{*next, due_count > 1};
}

}  // namespace firegate::modbus
