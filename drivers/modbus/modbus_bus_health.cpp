// What a Modbus bus's answers and failures mean (modbus_bus_state.hpp): a device's counters and link
// quality, online, offline or pending while it is not yet known whether the bus itself is down, the
// bus's own fault, and a fault of the gateway's own code charged to what it was doing (last_resort).

#include "modbus_bus_state.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace firegate::modbus::detail {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

/// Tells the sink one thing after another. One that throws (a fault in what it is handed to) does not
/// keep the others from being told; the first fault is thrown again once every one was tried, for
/// bus::last_resort to report.
class telling {
 public:
  telling() = default;
  telling(const telling&) = delete;
  telling& operator=(const telling&) = delete;
  template <class F>
  void operator()(F&& tell) {
    try {
      tell();
    } catch (...) {
      if (!first_) first_ = std::current_exception();
    }
  }
  void done() {
    if (first_) std::rethrow_exception(std::exchange(first_, nullptr));
  }

 private:
  std::exception_ptr first_;
};

}  // namespace

void bus::count_error(device_state& d, std::error_code ec) {
  auto& c = d.counters;
  c.last_error = ec.message();
  if (ec == modbus_errc::gateway_fault) return;  // not the device's answer: last_error says it
  switch (classify(ec)) {
    case failure_kind::timeout:
      ++c.timeouts;
      break;
    case failure_kind::crc:
      ++c.crc_errors;
      break;
    case failure_kind::connection:
      ++c.connection_errors;
      break;
    case failure_kind::malformed:
      ++c.malformed;
      break;
    case failure_kind::exception:
      ++c.exceptions;
      break;
  }
}

std::optional<device_quality> bus::note_quality(device_state& d, std::error_code ec) {
  // A bus that is down is one fault for all its devices, not a quality fault of each.
  if (stopped_ || bus_down_ || d.link != device_state::link::online) return std::nullopt;
  const auto change = d.quality.record(ec);
  if (change == link_quality::change::none) return std::nullopt;
  const bool poor = change == link_quality::change::poor;
  if (poor) {
    spdlog::warn(
        "device answers mostly badly bus={} device={} addr={} detail=\"{}\" check=\"the line's wiring, "
        "termination and earthing (RS-485), two masters on one line, or the gateway or device "
        "sending extra bytes: firegatectl device {}\"",
        name_, d.settings->name, where(d), d.quality.summary(), d.settings->name);
  }
  return device_quality{d.settings->name, poor, fmt::format("{} at {}", d.quality.summary(), where(d)),
                        clock::now()};
}

// Every change of state is made before the sink is told of it (here and in record_success,
// tell_offline, check_bus_down), and each thing to tell is told whatever the one before did: what
// the sink is handed to may throw (a fault in the gateway, caught by bus::last_resort), and a poll's
// outcome must still be counted once, a device's state be whole and every change be told once.
void bus::record_failure(device_state& d, std::error_code ec) {
  if (stopped_) return;
  telling tell;
  const auto quality = note_quality(d, ec);
  count_error(d, ec);
  const auto failures = ++d.counters.consecutive_failures;
  d.last_failure = ec;
  spdlog::debug("modbus poll failed bus={} addr={} device={} error=\"{}\" consecutive={}", name_, where(d),
                d.settings->name, ec.message(), failures);
  using told = device_state::told;
  if (d.link == device_state::link::offline) {
    // Still down: wait twice as long before the next try, up to the cap.
    d.schedule.failed_again(steady::now(), settings_->offline_retry_max);
    if (d.offline_told == told::pending) d.schedule.try_by(d.pending_since + pending_limit());
    // Its bus came back and it did not answer: its silence is its own once another unit answers
    // (it waits as pending); a transport failing again is the bus's again. (A request sent before
    // the bus came back does not count here: bus::poll asks it again.)
    if (d.offline_told == told::bus_back && !bus_down_) hold_back(d);
  } else if (failures >= settings_->offline_after) {
    d.link = device_state::link::offline;
    // Offline covers it from here: the quality window starts over when it answers again.
    d.quality.reset();
    d.schedule.went_offline(steady::now(), settings_->offline_retry_max);
    if (bus_down_) {
      d.offline_told = told::with_bus;
      d.sink_offline = true;
      tell([&] { sink_.on_device_status({d.settings->name, false, ec, where(d), clock::now(), true}); });
    } else if (devices_.size() > 1 || open_failed_ || classify(ec) == failure_kind::connection) {
      // One cause may be taking them all (several devices, or the line itself failing: a port error,
      // a connection lost): told once the others have failed too (the bus), or as soon as another
      // unit answers (its own silence). The others are asked now, not on their own schedules, and
      // the wait is bounded.
      hold_back(d);
    } else {
      tell([&] { tell_offline(d, ec); });
    }
  }
  // Nothing settled it in time (its neighbours failing slowly, not yet offline): its own fault. Not
  // while the line cannot be opened: that is the bus's fault, told with all its devices together.
  if (d.offline_told == told::pending && !open_failed_ && steady::now() - d.pending_since >= pending_limit())
    tell([&] { tell_offline(d, ec); });
  tell([&] { check_bus_down(ec); });
  // Its quality last, and not at all once it is offline: that covers it, one alert for one cause
  // (the window starts over when it answers again).
  if (quality && d.link == device_state::link::online) tell([&] { sink_.on_device_quality(*quality); });
  tell.done();
}

std::chrono::milliseconds bus::pending_limit() const {
  const auto all = settings_->timeout * static_cast<std::int64_t>(devices_.size() * settings_->offline_after);
  return std::clamp<std::chrono::milliseconds>(all + all / 2, std::chrono::seconds(10),
                                               std::chrono::seconds(90));
}

void bus::hold_back(device_state& d) {
  d.offline_told = device_state::told::pending;
  d.pending_since = steady::now();
  // Asked again by the end of the wait at the latest, its backoff notwithstanding.
  d.schedule.try_by(d.pending_since + pending_limit());
  // Its neighbours are asked at once: one answering settles it as this device's own fault.
  const auto now = steady::now();
  for (auto& x : devices_) {
    if (&x == &d || x.offline()) continue;
    x.schedule.hurry(now);
  }
  wake_all();
}

void bus::tell_offline(device_state& d, std::error_code ec) {
  d.offline_told = device_state::told::own;
  spdlog::warn("device offline bus={} device={} addr={} failures={} error=\"{}\" check=\"{}\"", name_,
               d.settings->name, where(d), d.counters.consecutive_failures, ec.message(),
               ec == modbus_errc::gateway_fault ? "the gateway's log (modbus bus loop error): report it"
                                                : "device power, wiring, unit id");
  d.sink_offline = true;
  sink_.on_device_status({d.settings->name, false, ec, where(d), clock::now()});
}

void bus::check_bus_down(std::error_code ec) {
  using told = device_state::told;
  if (bus_down_ || stopped_) return;
  std::size_t pending = 0;
  for (const auto& d : devices_) {
    if (d.link != device_state::link::offline) return;
    pending += d.offline_told == told::pending ? 1 : 0;
  }
  // The last of several devices failing after the others each failed on their own (and were told)
  // is its own fault too: a bus fault is several going at once, or a bus of one whose transport fails.
  if (pending == 0 || (!open_failed_ && pending < 2 && pending < devices_.size())) return;
  bus_down_ = true;
  bus_status status{name_, false, ec, transport_->endpoint(), {}, {}, clock::now(), {}};
  status.failed = open_failed_ ? fmt::format("it cannot be opened ({})", ec.message())
                               : fmt::format("no unit on it answers ({})", ec.message());
  for (const auto& d : devices_) status.devices.push_back(d.settings->name);
  spdlog::warn("bus offline bus={} addr={} devices={} error=\"{}\" check=\"{}\"", name_, status.address,
               status.devices.size(), ec.message(),
               status.address.starts_with("/")
                   ? "serial adapter, RS-485 cable and the line's power"
                   : "the gateway or server's power, network cable, address and port");
  std::vector<device_state*> with_it;
  for (auto& d : devices_) {
    if (d.offline_told != told::pending) continue;
    d.offline_told = told::with_bus;
    d.sink_offline = true;
    with_it.push_back(&d);
  }
  telling tell;
  tell([&] { sink_.on_bus_status(status); });
  for (auto* d : with_it) {
    tell([&] { sink_.on_device_status({d->settings->name, false, ec, where(*d), clock::now(), true}); });
  }
  tell.done();
}

void bus::record_success(device_state& d, steady::time_point started) {
  using told = device_state::told;
  const auto quality = note_quality(d, {});
  d.counters.consecutive_failures = 0;
  d.counters.last_good = clock::now();
  d.schedule.answered();
  // Its own state before anything is told (record_failure says why).
  const bool back = d.link == device_state::link::offline && !stopped_;
  // Told online only if it was told offline: a device waiting to be told never was, and one told
  // offline with its bus and waiting again since it came back was.
  const bool tell_back = back && d.sink_offline;
  if (back) {
    d.sink_offline = false;
    d.schedule.back_online(started);
  }
  d.offline_told = told::nothing;
  d.link = device_state::link::online;
  telling tell;
  if ((bus_down_ || !bus_known_) && !stopped_) {
    // The bus answers: a fault of it ends (one restored from before a restart too).
    const bool was_down = bus_down_;
    bus_down_ = false;
    bus_known_ = true;
    bus_status status{name_, true, {}, transport_->endpoint(), {}, {}, clock::now(), {}};
    for (const auto& x : devices_) status.devices.push_back(x.settings->name);
    if (was_down) bus_back_at_ = steady::now();
    // The devices that went down with it are asked again now (and one that went down with it
    // before, came back with it and was not asked before it went down again); one that stays
    // silent is told then.
    for (auto& x : devices_) {
      if ((x.offline_told != told::with_bus && x.offline_told != told::bus_back) || &x == &d) continue;
      x.offline_told = told::bus_back;
      x.schedule.retry_now(steady::now());
    }
    if (was_down) spdlog::info("bus online bus={} addr={}", name_, status.address);
    tell([&] { sink_.on_bus_status(status); });
  }
  // Something on the bus answers, so the silence of those waiting is their own; not yet of one a
  // worker is asking now (max_in_flight > 1): its own answer or failure settles it.
  for (auto& x : devices_) {
    if (x.offline_told == told::pending && &x != &d && !x.busy && !stopped_)
      tell([&] { tell_offline(x, x.last_failure); });
  }
  if (back) {
    spdlog::info("device online bus={} device={} addr={}", name_, d.settings->name, where(d));
    if (tell_back)
      tell([&] { sink_.on_device_status({d.settings->name, true, {}, where(d), clock::now()}); });
  }
  if (quality) tell([&] { sink_.on_device_quality(*quality); });
  tell.done();
}

steady::duration bus::last_resort(std::string_view error, std::optional<pending_write> writing,
                                  std::optional<pending_raw> asking, device_state* polling, const worker& w) {
  // An exception out of the loop's work: a fault in the gateway's own code, not the line's. Whoever
  // waits on what it was doing is answered. A device whose poll it was has a failed poll (its
  // schedule moves on, and one whose every poll fails goes offline on its own with this error, as a
  // device the gateway cannot read), unless the work was already settled (the fault came after its
  // outcome was counted or its caller answered: in the sink, in the caller's handler; nothing of the
  // device's to charge). Each of these may throw in turn (the same faulty code): caught here.
  ++loop_errors_;
  const auto fault = make_error_code(modbus_errc::gateway_fault);
  const auto guarded = [&](const char* what, auto&& step) {
    try {
      step();
    } catch (...) {
      spdlog::error("modbus bus loop error bus={} while=\"{}\" error=\"{}\"", name_, what,
                    what_of(std::current_exception()));
    }
  };
  std::string device = "-";
  if (writing) {
    device = writing->command.device;
    guarded("answering a write", [&] {
      writing->done({fault, false, fmt::format("the gateway failed while writing: {}", error)});
    });
  }
  if (asking) {
    device = fmt::format("unit {}", asking->unit);
    guarded("answering a request", [&] { asking->done(fault, {}); });
  }
  if (polling) {
    device = polling->settings->name;
    if (!w.settled && !stopped_) {
      guarded("counting the failed poll", [&] {
        polling->schedule.polled(w.started, w.full);
        record_failure(*polling, fault);
      });
    }
  }
  const auto now = steady::now();
  if (due_to_log(last_loop_error_log_, now)) {
    spdlog::error(
        "modbus bus loop error bus={} addr={} device={} after_answer={} error=\"{}\" errors_since_start={} "
        "check=\"a fault in the gateway, not the line or the device: report this line and the log before "
        "it\"",
        name_, transport_->endpoint(), device, w.settled, error, loop_errors_);
  }
  // A request may have stopped halfway through a frame: the line is closed to start clean. Not
  // after settled work (its answer was whole), nor under another worker opening the line or with
  // requests of other workers out (a gateway's transaction ids keep those in step; closing would
  // fail them, a sounder's write among them, as the line's fault). This worker's own request, if
  // the fault came from it, is no longer counted.
  if (!w.settled && !opening_ && requests_out_ == 0) transport_->close();
  // Work that is done with (a poll counted, a write or request answered): the next pass takes the
  // next work, so the loop cannot spin on it.
  if (w.settled || polling || writing || asking) return steady::duration::zero();
  // Nothing to charge it to (opening the line, choosing a device): a back-off before the next pass,
  // doubling to 10 s while it repeats within a minute; every worker keeps it when the line was
  // closed (a write waiting meanwhile goes after it).
  if (now - last_loop_error_ > 60s) loop_error_backoff_ = 250ms;
  last_loop_error_ = now;
  const steady::duration rest = loop_error_backoff_;
  if (!transport_->is_open()) next_open_ = now + rest;  // an open line is not held by it later
  loop_error_backoff_ = std::min(loop_error_backoff_ * 2, std::chrono::milliseconds(10s));
  return rest;
}

}  // namespace firegate::modbus::detail
