#include "modbus_bus.hpp"
#include "modbus_bus_state.hpp"

#include "link_quality.hpp"
#include "modbus_error.hpp"
#include "poll_schedule.hpp"
#include "technician.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace firegate::modbus::detail {
namespace asio = boost::asio;

// Named, not in the anonymous namespace: they live in coroutine frames, whose types have linkage.

/// Sets a flag false when it goes out of scope.
struct clear_on_exit {
  bool& flag;
  ~clear_on_exit() { flag = false; }
};

/// Counts a request as out on the transport while it lives, however it ends.
struct request_out {
  std::size_t& count;
  explicit request_out(std::size_t& n) : count(n) { ++count; }
  ~request_out() { --count; }
  request_out(const request_out&) = delete;
  request_out& operator=(const request_out&) = delete;
};
using namespace std::chrono_literals;

bus::bus(asio::any_io_executor ex, std::string name, std::shared_ptr<const modbus_bus_settings> settings,
         std::unique_ptr<transport> t, reading_sink& sink)
    : name_(std::move(name)),
      settings_(std::move(settings)),
      transport_(std::move(t)),
      sink_(sink),
      executor_(ex) {
  for (const auto& d : settings_->devices) {
    device_state s;
    s.settings = &d;
    s.schedule = device_schedule(d.alarm_interval, d.poll_interval, !d.profile->alarm_blocks.empty());
    s.counters.device = d.name;
    s.counters.bus = name_;
    s.counters.address = fmt::format("{} unit {}", transport_->endpoint(), d.unit_id);
    devices_.push_back(std::move(s));
  }
}

void bus::start() {
  // Spread the first polls over one alarm interval, so a bus of many devices asks at an even
  // pace from the start instead of in a burst every second; and the full polls after them over one
  // poll interval (device i's second full poll (P - A) * i / n later than its grid), so that each
  // alarm interval carries its share of them: bunched into one, they overran it on a line sized
  // for the average, and the line fell behind and skipped reads (docs/rs485.md).
  const auto now = steady::now();
  const auto n = static_cast<std::int64_t>(std::max<std::size_t>(devices_.size(), 1));
  for (std::size_t i = 0; i < devices_.size(); ++i) {
    auto& d = devices_[i];
    const auto k = static_cast<std::int64_t>(i);
    const auto spare = d.settings->poll_interval - d.settings->alarm_interval;
    d.schedule.start_at(now + d.settings->alarm_interval * k / n,
                        spare > spare.zero() ? spare * k / n : spare.zero());
  }
  last_ = devices_.size() - 1;
  last_idle_ = now;
  const auto n_workers =
      std::max<std::size_t>(1, std::min<std::size_t>(settings_->max_in_flight, devices_.size()));
  for (std::size_t i = 0; i < n_workers; ++i) {
    workers_.push_back(std::make_unique<worker>(executor_));
    spawn(*workers_.back());
  }
}

void bus::spawn(worker& w) {
  asio::co_spawn(
      executor_, [self = shared_from_this(), &w] { return self->run(w); },
      [self = shared_from_this(), &w](std::exception_ptr e) {
        if (!e || self->stopped_) return;
        // run() catches what its work throws; this is its catch itself failing. A bus whose worker
        // ended would poll no more, without a word: it starts again within a second (sooner when
        // the bus's workers are woken, as by a write, a request or a poll asked for now; not after
        // stop()), logged once a minute.
        ++self->restarts_;
        if (due_to_log(self->last_restart_log_, steady::now())) {
          spdlog::error(
              "modbus bus worker restarted bus={} addr={} error=\"{}\" restarts={} check=\"a fault in the "
              "gateway: report this line and the log before it\"",
              self->name_, self->transport_->endpoint(), what_of(e), self->restarts_);
        }
        w.pause.expires_after(1s);
        w.pause.async_wait([self, &w](boost::system::error_code) {
          if (!self->stopped_) self->spawn(w);
        });
      });
}

void bus::stop() {
  stopped_ = true;
  transport_->close();
  wake_all();
  auto writes = std::move(writes_);
  writes_.clear();
  for (auto& w : writes) {
    w.done({std::make_error_code(std::errc::operation_canceled), false, "the gateway is stopping"});
  }
  fail_raws(std::make_error_code(std::errc::operation_canceled));
}

void bus::raw(std::uint8_t unit, std::vector<std::uint8_t> pdu, pdu_handler done) {
  if (stopped_) return done(std::make_error_code(std::errc::operation_canceled), {});
  raws_.push_back({unit, std::move(pdu), std::move(done)});
  next_open_ = {};  // a closed line is tried for it at once
  wake_all();       // between this poll and the next
}

std::vector<device_counters> bus::counters() const {
  std::vector<device_counters> out;
  out.reserve(devices_.size());
  for (const auto& d : devices_) {
    out.push_back(d.counters);
    out.back().online = d.link == device_state::link::online;
  }
  return out;
}

void bus::write(write_command command, write_handler done) {
  if (stopped_) {
    done({std::make_error_code(std::errc::operation_canceled), false, "the gateway is stopping"});
    return;
  }
  writes_.push_back({std::move(command), std::move(done)});
  next_open_ = {};  // a closed line is tried for it at once
  wake_all();       // a write goes before the next poll
}

bool bus::poll_now(const std::string& device) {
  for (auto& d : devices_) {
    if (d.settings->name != device) continue;
    d.schedule.ask_now(steady::now());
    next_open_ = {};  // a closed line is tried for it at once, as for a write
    wake_all();
    return true;
  }
  return false;
}

void bus::fail_raws(std::error_code ec) {
  auto raws = std::move(raws_);
  raws_.clear();
  for (auto& r : raws) r.done(ec, {});
}

void bus::wake_all() {
  for (auto& w : workers_) w->pause.cancel();
}

awaitable<void> bus::run(worker& w) {
  // What this worker has under way, for the last resort below: a write or a technician's request
  // (whose caller waits for its answer) and a poll.
  std::optional<pending_write> writing;
  std::optional<pending_raw> asking;
  device_state* polling = nullptr;
  while (!stopped_) {
    w.settled = false;  // only the work of this pass settles it
    steady::duration rest{};
    try {
      if (!transport_->is_open()) {
        if (opening_) {
          co_await wait_opening(w);  // another worker is opening it
          continue;
        }
        if (const auto now = steady::now(); now < next_open_) {
          // The line's back-off is the bus's, kept by every worker: each keeping its own, a dead
          // line was tried once a worker each step, and each failed try counted once more against
          // every device. A new write, technician's request or poll asked for now tries it at once.
          co_await back_off(w, next_open_ - now);
          continue;
        }
        if (const auto failed = co_await reopen()) {
          // A technician waiting on a closed line is told now, not after the next retry.
          fail_raws(std::make_error_code(std::errc::host_unreachable));
          continue;  // the next pass waits out the back-off
        }
      }
      if (!writes_.empty()) {
        writing = std::move(writes_.front());
        writes_.erase(writes_.begin());
        auto outcome = co_await do_write(writing->command, w);
        auto done = std::move(writing->done);
        writing.reset();
        w.settled = true;  // answered: a fault in the caller's handler is not the line's
        done(outcome);
        continue;
      }
      if (!raws_.empty()) {
        asking = std::move(raws_.front());
        raws_.erase(raws_.begin());
        const auto sent = steady::now();
        const request_out out{requests_out_};
        auto answer = co_await transport_->transact(asking->unit, asking->pdu);
        auto done = std::move(asking->done);
        asking.reset();
        w.settled = true;
        done(std::move(answer), std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - sent));
        continue;
      }
      // Of the devices due, the one asked longest ago goes next (every device once a turn on a bus
      // behind schedule); with none due, the earliest; among equals, the one after the last polled.
      const auto now = steady::now();
      const auto next = next_to_ask(
          devices_.size(), last_, now, [&](std::size_t i) { return devices_[i].due(); },
          [&](std::size_t i) { return devices_[i].schedule.asked(); },
          [&](std::size_t i) { return devices_[i].busy; });
      if (!next) {
        co_await pause(w, devices_.empty() ? steady::duration(1h) : steady::duration(20ms));
        continue;
      }
      auto& d = devices_[next->index];
      if (d.due() > now) {
        last_idle_ = now;  // nothing due: the bus has room (poll_schedule.hpp, a full poll giving way)
        co_await pause_until(w, d.due());  // or until a write or stop() wakes us
        continue;
      }
      // Other devices due too and no pause for an alarm interval: its full poll gives way to their
      // alarm reads (poll_schedule.hpp).
      const auto turn =
          d.schedule.take_turn(now, d.offline(), {next->others_due, last_idle_, last_full_, devices_.size()});
      if (turn == device_schedule::turn::later) continue;  // its alarm group is not due yet
      if (turn == device_schedule::turn::full) last_full_ = now;
      note_lateness(d, now);
      last_ = next->index;
      // Its own device only, however the poll ends: another worker's device is still being asked
      // (max_in_flight > 1), and free again it would be asked twice at once.
      d.busy = true;
      const clear_on_exit idle{d.busy};
      polling = &d;
      w.started = now;  // before the poll's frame is made: the last resort charges this poll
      w.full = turn == device_schedule::turn::full;
      co_await poll(d, w);
      polling = nullptr;
    } catch (...) {
      rest = last_resort(what_of(std::current_exception()), std::exchange(writing, std::nullopt),
                         std::exchange(asking, std::nullopt), std::exchange(polling, nullptr), w);
    }
    // Not in the catch, where a coroutine cannot wait: a fault charged to nothing waits here, so
    // that the loop cannot spin on it whether or not the line was closed.
    if (rest > steady::duration::zero()) co_await back_off(w, rest);
  }
}

awaitable<std::error_code> bus::reopen() {
  // The others wait while it opens, whatever ends it (an exception too: left set, every worker
  // would wait for ever).
  opening_ = true;
  const clear_on_exit guard{opening_};
  const auto tried = steady::now();  // a connect may take its timeout: the outage began before it
  if (auto ec = co_await transport_->open(); ec) {
    if (stopped_) co_return ec;
    if (link_up_ || !open_failure_logged_) {
      spdlog::warn(
          "modbus open failed bus={} addr={} error=\"{}\" check=\"device or server present, address, "
          "port or serial device, permissions\" retry_in_ms={}",
          name_, transport_->endpoint(), ec.message(), open_backoff_.count());
      open_failure_logged_ = true;
    }
    link_up_ = false;
    const auto now = steady::now();
    if (!open_failed_) open_failing_since_ = tried;
    open_failed_ = true;
    for (auto& d : devices_) {
      // Tries to open back off (to open_retry_max apart), and each may take a connect's timeout, so
      // offline_after of them could take long: a line that cannot be opened for pending_limit() (at
      // most 90 s; open_wait puts a try there) takes its devices offline whatever the count, and its
      // fault is told within GB 50116's 100 s.
      if (!d.offline() && now - open_failing_since_ >= pending_limit()) {
        d.counters.consecutive_failures =
            std::max(d.counters.consecutive_failures, settings_->offline_after - 1);
      }
      record_failure(d, ec);
    }
    // The line's one back-off, whoever tried it (the run loop or a write): no worker tries again
    // before next_open_ unless a new write, technician's request or poll asked for now comes; a
    // try lands at the pending limit (open_wait).
    next_open_ = steady::now() + open_wait(open_backoff_);
    open_backoff_ = std::min(open_backoff_ * 2, open_retry_max);
    co_return ec;
  }
  // A reopen after a timeout is routine resynchronisation; only a link that was down is news.
  if (!link_up_) spdlog::info("modbus connected bus={} addr={}", name_, transport_->endpoint());
  if (open_failed_) {
    // The line is back (an adapter plugged in again, a gateway up). Its failures were the line's,
    // not its devices': those not yet told offline are online as far as anyone knows, start
    // counting afresh and are asked now (one waiting to be told must not be told offline on its own
    // because a neighbour answers before it is asked); those told offline with the line (or with
    // its fault before, and not asked since it ended) are asked now too, not after the back-off its
    // failed opens gave them (up to offline_retry_max), and told online when they answer. One offline on its
    // own before keeps its back-off: a dead unit retried at once would cost the live ones its timeout at
    // every reconnection.
    using told = device_state::told;
    const auto now = steady::now();
    for (auto& d : devices_) {
      if (!d.offline()) {
        d.counters.consecutive_failures = 0;
      } else if (d.offline_told == told::pending && !d.sink_offline) {
        d.link = device_state::link::online;
        d.offline_told = told::nothing;
        d.counters.consecutive_failures = 0;
        d.schedule.back_online(now);  // its full polls at its share of the interval, not all at once
        d.schedule.hurry(now);
      } else if (d.offline_told == told::with_bus) {
        d.schedule.retry_now(now);
      } else if (d.offline_told == told::pending) {
        // Told offline with its bus, and waiting again since the bus came back: as it was then.
        d.offline_told = told::bus_back;
        d.schedule.retry_now(now);
      } else if (d.offline_told == told::bus_back) {
        d.schedule.retry_now(now);
      }
    }
    wake_all();  // other workers (max_in_flight > 1) may be waiting out the back-off
  }
  open_backoff_ = 250ms;
  next_open_ = {};
  link_up_ = true;
  open_failed_ = false;
  open_failure_logged_ = false;
  co_return std::error_code{};
}

steady::duration bus::open_wait(std::chrono::milliseconds backoff) const {
  const auto all_offline =
      std::all_of(devices_.begin(), devices_.end(), [](const device_state& d) { return d.offline(); });
  const auto now = steady::now();
  const auto forced = open_failing_since_ + pending_limit();
  if (all_offline || forced <= now) return backoff;
  return std::min<steady::duration>(backoff, forced - now);
}

void bus::note_lateness(const device_state& d, steady::time_point now) {
  if (d.link == device_state::link::offline) return;
  const auto late = now - d.due();
  const auto interval = d.schedule.interval();
  if (late <= interval) return;
  ++late_polls_;
  if (!due_to_log(last_late_warning_, now)) return;
  spdlog::warn(
      "modbus bus behind schedule bus={} addr={} device={} late_ms={} late_polls={} check=\"too many "
      "devices or slow answers for the intervals: raise alarm_interval_ms or poll_interval_ms, raise the "
      "baud rate, or split the line\"",
      name_, transport_->endpoint(), d.settings->name,
      std::chrono::duration_cast<std::chrono::milliseconds>(late).count(), late_polls_);
}

awaitable<result<std::vector<std::uint8_t>>> bus::exchange(device_state& d,
                                                           const std::vector<std::uint8_t>& request) {
  ++d.counters.requests;
  const auto sent = steady::now();
  const request_out out{requests_out_};
  auto pdu = co_await transport_->transact(d.settings->unit_id, request);
  if (pdu) {
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - sent);
    d.counters.last_response_time = took;
    d.counters.max_response_time = std::max(d.counters.max_response_time, took);
  }
  co_return pdu;
}

void bus::count_response(device_state& d) {
  ++d.counters.responses;
  d.counters.total_response_time += d.counters.last_response_time;
}

awaitable<void> bus::poll(device_state& d, worker& w) {
  const auto& profile = *d.settings->profile;
  // Worked out by run() as it started the poll (the last resort charges them, should it throw).
  const auto started = w.started;
  const bool full = w.full;
  const auto& blocks = full ? (d.gapless ? profile.gapless_blocks : profile.blocks)
                            : (d.gapless ? profile.gapless_alarm_blocks : profile.alarm_blocks);
  ++d.counters.polls;
  auto& readings = w.readings;  // the worker's, emptied: its memory serves every poll
  readings.clear();
  readings.reserve(profile.points.size());
  const auto now = clock::now();
  bool ok = true;
  std::error_code failed;
  for (const auto& block : blocks) {
    w.request.clear();
    encode_request(block.request, w.request);
    auto pdu = co_await exchange(d, w.request);
    std::error_code ec =
        pdu ? decode_block(d, profile, block, *pdu, now, readings, w.registers) : pdu.error();
    if (ec == modbus_errc::illegal_data_address && block.spans_gap && !d.gapless) {
      d.gapless = true;
      spdlog::warn(
          "modbus device refuses reads across unused registers bus={} device={} addr={} block=0x{:04X}+{} "
          "action=\"reading without gaps from now on: more requests per poll\"",
          name_, d.settings->name, where(d), block.request.address, block.request.count);
    }
    if (ec && d.offline_told == device_state::told::bus_back && started < bus_back_at_) {
      // Asked while its bus was down, and another worker's answer brought the bus back meanwhile
      // (max_in_flight > 1): its silence was the bus's, not yet its own. Asked again now.
      count_error(d, ec);
      d.schedule.retry_now(steady::now());
      ok = false;
      break;
    }
    if (ec) {
      // A well-framed exception or mismatch leaves the stream in step: the transport stays open.
      failed = ec;
      ok = false;
      break;
    }
    count_response(d);
  }
  d.schedule.polled(started, full);
  // Its outcome is being counted from here: a fault in what follows (the sink's) is not the
  // device's, and its schedule has moved on (the loop's last resort does neither again).
  w.settled = true;
  if (failed) record_failure(d, failed);
  if (!ok) co_return;
  record_success(d, started);
  if (!stopped_) sink_.on_readings(readings);
}

std::error_code bus::decode_block(const device_state& d, const device_profile& profile,
                                  const read_block& block, std::span<const std::uint8_t> pdu,
                                  clock::time_point now, std::vector<reading>& out,
                                  std::vector<std::uint16_t>& registers) {
  const auto reading_of = [&](const point_def& p, point_value v) {
    return reading{d.settings->name, p.name, v.value, p.unit, v.q, now};
  };
  if (is_bit_read(block.request.function)) {
    auto bits = decode_read_bits_response(block.request, pdu);
    if (!bits) return bits.error();
    for (auto i : block.points) {
      const auto& p = profile.points[i];
      out.push_back(reading_of(p, decode_bit(p, (*bits)[p.address - block.request.address])));
    }
    return {};
  }
  if (auto ec = decode_read_response(block.request, pdu, registers)) return ec;
  for (auto i : block.points) {
    const auto& p = profile.points[i];
    const auto at = static_cast<std::size_t>(p.address - block.request.address);
    out.push_back(reading_of(p, decode_registers(p, std::span(registers).subspan(at, register_span(p)))));
  }
  return {};
}

awaitable<void> bus::wait_opening(worker& w) {
  w.pause.expires_after(20ms);
  boost::system::error_code ec;
  co_await w.pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

awaitable<void> bus::back_off(worker& w, steady::duration d) {
  if (stopped_) co_return;
  w.pause.expires_after(d);
  boost::system::error_code ec;
  co_await w.pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

awaitable<void> bus::pause_until(worker& w, steady::time_point t) {
  if (stopped_ || !writes_.empty() || !raws_.empty()) co_return;
  if (const auto grid = std::chrono::duration_cast<steady::duration>(settings_->wake_grid);
      grid.count() > 0 && t - steady::now() >= grid) {
    // Up to the next line of the grid (modbus_bus.hpp, wake_grid). Not a shorter wait: a bus that
    // idles less than a grid step between polls is busy, and its line or gateway paces it.
    const auto since = t.time_since_epoch();
    t = steady::time_point((since + grid - steady::duration(1)) / grid * grid);
  }
  w.pause.expires_at(t);
  boost::system::error_code ec;
  co_await w.pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace firegate::modbus::detail

namespace firegate::modbus {
namespace asio = boost::asio;
using detail::bus;

namespace {

class modbus_bus_driver final : public bus_driver {
 public:
  explicit modbus_bus_driver(std::shared_ptr<bus> b) : bus_(std::move(b)) {}
  ~modbus_bus_driver() override { stop(); }
  void start() override { bus_->start(); }
  void stop() override { bus_->stop(); }
  std::vector<device_counters> counters() const override { return bus_->counters(); }
  void write(write_command command, write_handler done) override {
    bus_->write(std::move(command), std::move(done));
  }
  bool poll_now(const std::string& device) override { return bus_->poll_now(device); }
  void transact(register_request request, std::function<void(register_reply)> done) override {
    transact_registers(sender(), request, std::move(done));
  }
  void identify(std::uint8_t unit, std::function<void(unit_identity)> done) override {
    identify_unit(sender(), bus_->library(), unit, std::move(done));
  }

 private:
  pdu_sender sender() {
    return [b = bus_](std::uint8_t unit, std::vector<std::uint8_t> pdu, pdu_handler done) {
      b->raw(unit, std::move(pdu), std::move(done));
    };
  }
  std::shared_ptr<bus> bus_;
};

}  // namespace

std::unique_ptr<bus_driver> make_modbus_bus(asio::any_io_executor ex, std::string name,
                                            std::shared_ptr<const modbus_bus_settings> settings,
                                            std::unique_ptr<transport> t, reading_sink& sink) {
  return std::make_unique<modbus_bus_driver>(
      std::make_shared<bus>(std::move(ex), std::move(name), std::move(settings), std::move(t), sink));
}

}  // namespace firegate::modbus
