#include "modbus_bus.hpp"

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

namespace firegate::modbus {
namespace asio = boost::asio;
using asio::awaitable;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// State of one device on the bus, owned by the bus coroutine.
struct device_state {
  const modbus_device_settings* settings{nullptr};
  enum class link { unknown, online, offline } link{link::unknown};
  /// When it is asked next, online or offline (poll_schedule.hpp).
  device_schedule schedule;
  steady::time_point pending_since{};  ///< when it began waiting as told::pending
  bool busy{false};                    ///< a worker is polling it (with max_in_flight > 1)
  /// How its going offline was told to the sink: on its own; with its bus (the bus's fault covers
  /// it); not yet, because no other unit has answered since it went offline (the bus may be down:
  /// told once that is known); or its bus came back and it has not answered yet.
  enum class told { nothing, pending, own, with_bus, bus_back } offline_told{told::nothing};
  std::error_code last_failure;
  /// The device refused a read across its reserved registers: read it without gaps from now on.
  bool gapless{false};
  link_quality quality;
  device_counters counters;

  bool offline() const { return link == link::offline; }
  steady::time_point due() const { return schedule.due(offline()); }
};

struct pending_write {
  write_command command;
  write_handler done;
};

/// A technician's request (firegatectl read, write, scan), sent as it is between polls.
struct pending_raw {
  std::uint8_t unit;
  std::vector<std::uint8_t> pdu;
  pdu_handler done;
};

/// Shared with its coroutine so that stop() can return while the coroutine unwinds.
/// Thread safety: every member is used on the daemon's io_context only.
class bus final : public std::enable_shared_from_this<bus> {
  /// One per request the bus may have outstanding (max_in_flight): its own pause and request buffer.
  struct worker {
    explicit worker(asio::any_io_executor ex) : pause(std::move(ex)) {}
    asio::steady_timer pause;
    std::vector<std::uint8_t> request;
  };

 public:
  bus(asio::any_io_executor ex, std::string name, std::shared_ptr<const modbus_bus_settings> settings,
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

  void start() {
    // Spread the first polls over one alarm interval, so a bus of many devices asks at an even
    // pace from the start instead of in a burst every second.
    const auto now = steady::now();
    const auto n = static_cast<std::int64_t>(std::max<std::size_t>(devices_.size(), 1));
    for (std::size_t i = 0; i < devices_.size(); ++i) {
      auto& d = devices_[i];
      d.schedule.start_at(now + d.settings->alarm_interval * static_cast<std::int64_t>(i) / n);
    }
    last_ = devices_.size() - 1;
    const auto n_workers =
        std::max<std::size_t>(1, std::min<std::size_t>(settings_->max_in_flight, devices_.size()));
    for (std::size_t i = 0; i < n_workers; ++i) {
      workers_.push_back(std::make_unique<worker>(executor_));
      asio::co_spawn(
          executor_, [self = shared_from_this(), w = workers_.back().get()] { return self->run(*w); },
          asio::detached);
    }
  }

  void stop() {
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

  void raw(std::uint8_t unit, std::vector<std::uint8_t> pdu, pdu_handler done) {
    if (stopped_) return done(std::make_error_code(std::errc::operation_canceled), {});
    raws_.push_back({unit, std::move(pdu), std::move(done)});
    wake_all();  // between this poll and the next
  }

  std::shared_ptr<const profile_library> library() const { return settings_->library; }

  std::vector<device_counters> counters() const {
    std::vector<device_counters> out;
    out.reserve(devices_.size());
    for (const auto& d : devices_) {
      out.push_back(d.counters);
      out.back().online = d.link == device_state::link::online;
    }
    return out;
  }

  void write(write_command command, write_handler done) {
    if (stopped_) {
      done({std::make_error_code(std::errc::operation_canceled), false, "the gateway is stopping"});
      return;
    }
    writes_.push_back({std::move(command), std::move(done)});
    wake_all();  // a write goes before the next poll
  }

  bool poll_now(const std::string& device) {
    for (auto& d : devices_) {
      if (d.settings->name != device) continue;
      d.schedule.ask_now(steady::now());
      wake_all();
      return true;
    }
    return false;
  }

 private:
  void fail_raws(std::error_code ec) {
    auto raws = std::move(raws_);
    raws_.clear();
    for (auto& r : raws) r.done(ec, {});
  }

  void wake_all() {
    for (auto& w : workers_) w->pause.cancel();
  }

  /// One worker: with max_in_flight = 1 (the default) the only one, so the bus carries one request
  /// at a time. With more, each takes the most overdue device no other worker is polling.
  awaitable<void> run(worker& w) {
    auto backoff = 250ms;
    while (!stopped_) {
      try {
        if (!transport_->is_open()) {
          if (opening_) {
            co_await wait_opening(w);  // another worker is opening it
            continue;
          }
          opening_ = true;
          const bool opened = co_await reopen(backoff);
          opening_ = false;
          if (!opened) {
            // A technician waiting on a closed line is told now, not after the next retry.
            fail_raws(std::make_error_code(std::errc::host_unreachable));
            co_await pause(w, backoff);
            backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(10s));
            continue;
          }
        }
        backoff = 250ms;
        if (!writes_.empty()) {
          auto next_write = std::move(writes_.front());
          writes_.erase(writes_.begin());
          auto outcome = co_await do_write(next_write.command, w);
          next_write.done(outcome);
          continue;
        }
        if (!raws_.empty()) {
          auto next_raw = std::move(raws_.front());
          raws_.erase(raws_.begin());
          const auto sent = steady::now();
          auto answer = co_await transport_->transact(next_raw.unit, next_raw.pdu);
          next_raw.done(std::move(answer),
                        std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - sent));
          continue;
        }
        // The most overdue device goes next; among equally due ones, the one after the last polled.
        const auto next = most_overdue(
            devices_.size(), last_, [&](std::size_t i) { return devices_[i].due(); },
            [&](std::size_t i) { return devices_[i].busy; });
        if (!next) {
          co_await pause(w, devices_.empty() ? steady::duration(1h) : steady::duration(20ms));
          continue;
        }
        auto& d = devices_[*next];
        const auto now = steady::now();
        if (d.due() > now) {
          co_await pause_until(w, d.due());  // or until a write or stop() wakes us
          continue;
        }
        note_lateness(d, now);
        last_ = *next;
        d.busy = true;
        co_await poll(d, now, w);
        d.busy = false;
      } catch (const std::exception& e) {
        // A bus loop catches at its top, backs off and goes on.
        for (auto& d : devices_) d.busy = false;
        spdlog::error("modbus bus loop error bus={} addr={} error=\"{}\"", name_, transport_->endpoint(),
                      e.what());
        transport_->close();
      }
    }
  }

  /// Opens the transport; on failure every device on the bus has failed (the server, the gateway in
  /// front of the devices or the serial port is unreachable).
  awaitable<bool> reopen(std::chrono::milliseconds backoff) {
    if (auto ec = co_await transport_->open(); ec) {
      if (stopped_) co_return false;
      if (link_up_ || !open_failure_logged_) {
        spdlog::warn(
            "modbus open failed bus={} addr={} error=\"{}\" check=\"device or server present, address, "
            "port or serial device, permissions\" retry_in_ms={}",
            name_, transport_->endpoint(), ec.message(), backoff.count());
        open_failure_logged_ = true;
      }
      link_up_ = false;
      open_failed_ = true;
      for (auto& d : devices_) record_failure(d, ec);
      co_return false;
    }
    // A reopen after a timeout is routine resynchronisation; only a link that was down is news.
    if (!link_up_) spdlog::info("modbus connected bus={} addr={}", name_, transport_->endpoint());
    link_up_ = true;
    open_failed_ = false;
    open_failure_logged_ = false;
    co_return true;
  }

  /// A bus that cannot keep its schedule (too many devices for its baud rate, or slow answers) says
  /// so, at most once a minute, with what to change.
  void note_lateness(const device_state& d, steady::time_point now) {
    if (d.link == device_state::link::offline) return;
    const auto late = now - d.due();
    const auto interval = d.schedule.interval();
    if (late <= interval) return;
    ++late_polls_;
    if (now - last_late_warning_ < 60s && last_late_warning_ != steady::time_point{}) return;
    last_late_warning_ = now;
    spdlog::warn(
        "modbus bus behind schedule bus={} addr={} device={} late_ms={} late_polls={} check=\"too many "
        "devices or slow answers for the intervals: raise alarm_interval_ms or poll_interval_ms, raise the "
        "baud rate, or split the line\"",
        name_, transport_->endpoint(), d.settings->name,
        std::chrono::duration_cast<std::chrono::milliseconds>(late).count(), late_polls_);
  }

  /// One request, timed and counted. The transport closes itself on a timeout or a framing error.
  awaitable<result<std::vector<std::uint8_t>>> exchange(device_state& d,
                                                        const std::vector<std::uint8_t>& request) {
    ++d.counters.requests;
    const auto sent = steady::now();
    auto pdu = co_await transport_->transact(d.settings->unit_id, request);
    if (pdu) {
      const auto took = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - sent);
      d.counters.last_response_time = took;
      d.counters.max_response_time = std::max(d.counters.max_response_time, took);
    }
    co_return pdu;
  }

  void count_response(device_state& d) {
    ++d.counters.responses;
    d.counters.total_response_time += d.counters.last_response_time;
  }

  awaitable<void> poll(device_state& d, steady::time_point started, worker& w) {
    const auto& profile = *d.settings->profile;
    const bool full = d.schedule.full_at(started, d.offline());
    const auto& blocks = full ? (d.gapless ? profile.gapless_blocks : profile.blocks)
                              : (d.gapless ? profile.gapless_alarm_blocks : profile.alarm_blocks);
    ++d.counters.polls;
    std::vector<reading> readings;
    readings.reserve(profile.points.size());
    const auto now = clock::now();
    bool ok = true;
    for (const auto& block : blocks) {
      w.request.clear();
      encode_request(block.request, w.request);
      auto pdu = co_await exchange(d, w.request);
      std::error_code ec = pdu ? decode_block(d, profile, block, *pdu, now, readings) : pdu.error();
      if (ec == modbus_errc::illegal_data_address && block.spans_gap && !d.gapless) {
        d.gapless = true;
        spdlog::warn(
            "modbus device refuses reads across unused registers bus={} device={} addr={} block=0x{:04X}+{} "
            "action=\"reading without gaps from now on: more requests per poll\"",
            name_, d.settings->name, where(d), block.request.address, block.request.count);
      }
      if (ec) {
        // A well-framed exception or mismatch leaves the stream in step: the transport stays open.
        record_failure(d, ec);
        ok = false;
        break;
      }
      count_response(d);
    }
    d.schedule.polled(started, full);
    if (!ok) co_return;
    record_success(d, started);
    if (!stopped_) sink_.on_readings(readings);
  }

  /// Checks a block's response (written once, in the codec) and appends its points' readings.
  static std::error_code decode_block(const device_state& d, const device_profile& profile,
                                      const read_block& block, std::span<const std::uint8_t> pdu,
                                      clock::time_point now, std::vector<reading>& out) {
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
    auto registers = decode_read_response(block.request, pdu);
    if (!registers) return registers.error();
    for (auto i : block.points) {
      const auto& p = profile.points[i];
      const auto at = static_cast<std::size_t>(p.address - block.request.address);
      out.push_back(reading_of(p, decode_registers(p, std::span(*registers).subspan(at, register_span(p)))));
    }
    return {};
  }

  static write_outcome invalid(std::string detail) {
    return write_outcome{std::make_error_code(std::errc::invalid_argument), false, std::move(detail)};
  }

  /// Checks a value against a [[writes]] entry and builds its request (fc 05 for a coil, 06 for a
  /// register, 16 for a 32-bit value); the registers are left in `regs` for a read-back. An error
  /// text when the value is refused.
  static std::optional<std::string> build_write(const device_profile& profile, const write_def& w,
                                                double value, write_request& request,
                                                std::uint16_t (&regs)[2]) {
    const auto& p = w.target;
    if ((w.min && value < *w.min) || (w.max && value > *w.max) ||
        (!p.labels.empty() && !config::has_label(p.labels, value))) {
      return fmt::format("{} is outside what {} accepts for {} (min {}, max {}{})", value, profile.name,
                         p.name, w.min ? fmt::format("{}", *w.min) : "-",
                         w.max ? fmt::format("{}", *w.max) : "-",
                         p.labels.empty() ? "" : ", one of the labelled values");
    }
    if (auto ec = encode_registers(p, value, std::span(regs, register_span(p)))) {
      return fmt::format("{} does not fit {} ({})", value, p.name, ec.message());
    }
    request = {function_code::write_single_register, p.address, {}, {}};
    if (p.table == register_table::coil) {
      request.function = function_code::write_single_coil;
      request.bits = {regs[0] != 0};
    } else if (register_span(p) == 2) {
      request.function = function_code::write_multiple_registers;
      request.registers = {regs[0], regs[1]};
    } else {
      request.registers = {regs[0]};
    }
    return std::nullopt;
  }

  static std::string writables(const device_profile& profile) {
    std::vector<std::string> names;
    for (const auto& x : profile.writes) names.push_back(x.target.name);
    return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
  }

  /// A write between polls: checked against the profile's [[writes]], sent, its echo checked, and
  /// read back when the profile says so.
  awaitable<write_outcome> do_write(const write_command& c, worker& wk) {
    if (c.device == broadcast_device) co_return co_await do_broadcast(c, wk);
    auto it = std::find_if(devices_.begin(), devices_.end(),
                           [&](const device_state& s) { return s.settings->name == c.device; });
    if (it == devices_.end()) co_return invalid(fmt::format("no device \"{}\" on bus {}", c.device, name_));
    auto& d = *it;
    const auto& profile = *d.settings->profile;
    const auto* w = profile.find_write(c.target);
    if (!w) {
      co_return invalid(fmt::format("profile {} has no writable \"{}\"; it has: {}", profile.name, c.target,
                                    writables(profile)));
    }
    const auto& p = w->target;
    std::uint16_t regs[2]{};
    write_request request;
    if (auto refused = build_write(profile, *w, c.value, request, regs))
      co_return invalid(std::move(*refused));
    const auto fail = [&](std::error_code ec, std::string_view stage) {
      ++d.counters.write_failures;
      count_error(d, ec);
      auto detail = fmt::format("{} {}={} at {}: {} failed: {}", c.device, p.name, c.value, where(d), stage,
                                ec.message());
      spdlog::warn("modbus write failed bus={} device={} addr={} target={} value={} stage={} error=\"{}\"",
                   name_, c.device, where(d), p.name, c.value, stage, ec.message());
      return write_outcome{ec, false, std::move(detail)};
    };
    // Reads the target and compares it with what the write puts there: empty when equal.
    const auto read_back = [&]() -> awaitable<std::error_code> {
      const read_request back{read_function(p.table), p.address, register_span(p)};
      wk.request.clear();
      encode_request(back, wk.request);
      auto answer = co_await exchange(d, wk.request);
      if (!answer) co_return answer.error();
      if (p.table == register_table::coil) {
        auto bits = decode_read_bits_response(back, *answer);
        if (!bits) co_return bits.error();
        count_response(d);
        co_return (*bits)[0] != request.bits[0] ? make_error_code(modbus_errc::readback_mismatch)
                                                : std::error_code{};
      }
      auto got = decode_read_response(back, *answer);
      if (!got) co_return got.error();
      count_response(d);
      co_return std::equal(got->begin(), got->end(), regs) ? std::error_code{}
                                                           : make_error_code(modbus_errc::readback_mismatch);
    };
    if (c.only_if_differs) {
      auto ec = co_await read_back();
      if (!ec) {
        spdlog::info(
            "modbus write not needed bus={} device={} addr={} target={} value={} reason=\"reads back "
            "at the value already\"",
            name_, c.device, where(d), p.name, c.value);
        co_return write_outcome{
            {},
            true,
            fmt::format("{} {} reads {} at {} already; nothing written", c.device, p.name, c.value, where(d)),
            true};
      }
      // Unreadable (a timeout, an exception): written all the same, as a safety output must be. A
      // timeout closes a TCP connection to resynchronise: opened again for the write.
      if (ec != modbus_errc::readback_mismatch) {
        spdlog::warn(
            "modbus read before a write failed bus={} device={} addr={} target={} error=\"{}\" "
            "action=\"writing all the same\"",
            name_, c.device, where(d), p.name, ec.message());
        while (opening_ && !stopped_) co_await wait_opening(wk);  // another worker reopens it
        if (!transport_->is_open()) {
          opening_ = true;
          auto opened = co_await transport_->open();
          opening_ = false;
          if (opened) {
            ++d.counters.writes;
            co_return fail(opened, "reopen before the write");
          }
        }
      }
    }
    ++d.counters.writes;
    wk.request.clear();
    encode_request(request, wk.request);
    auto pdu = co_await exchange(d, wk.request);
    std::error_code ec = pdu ? check_write_response(request, *pdu) : pdu.error();
    if (ec) co_return fail(ec, "write");
    count_response(d);
    bool verified = false;
    if (w->verify) {
      if (auto back = co_await read_back()) co_return fail(back, "read-back");
      verified = true;
    }
    const auto key = label_key(c.value);
    const auto label = key ? p.labels.find(*key) : p.labels.end();
    spdlog::info("modbus write bus={} device={} addr={} target={} value={}{} verified={}", name_, c.device,
                 where(d), p.name, c.value,
                 label == p.labels.end() ? std::string() : fmt::format(" label={}", label->second), verified);
    co_return write_outcome{{},
                            verified,
                            fmt::format("{} {}={} written at {}{}", c.device, p.name, c.value, where(d),
                                        verified ? " and read back" : "")};
  }

  /// A write to every unit on the line at once (device "*"): every device that has the writable
  /// must have it at the same place, as with a line of one model. Nobody answers a broadcast, so
  /// nothing confirms it; the line is quiet for the turnaround delay afterwards.
  awaitable<write_outcome> do_broadcast(const write_command& c, worker& wk) {
    const write_def* w = nullptr;
    const device_profile* profile = nullptr;
    for (const auto& d : devices_) {
      const auto* mine = d.settings->profile->find_write(c.target);
      if (!mine) continue;
      if (w && (mine->target.table != w->target.table || mine->target.address != w->target.address ||
                register_span(mine->target) != register_span(w->target))) {
        co_return invalid(fmt::format(
            "\"{}\" is at different places in {} and {} on bus {}: a broadcast would mean different things "
            "to them; write each device instead",
            c.target, profile->name, d.settings->profile->name, name_));
      }
      w = mine;
      profile = d.settings->profile.get();
    }
    if (!w) co_return invalid(fmt::format("no device on bus {} has a writable \"{}\"", name_, c.target));
    std::uint16_t regs[2]{};
    write_request request;
    if (auto refused = build_write(*profile, *w, c.value, request, regs))
      co_return invalid(std::move(*refused));
    wk.request.clear();
    encode_request(request, wk.request);
    if (auto ec = co_await transport_->broadcast(wk.request, settings_->broadcast_turnaround)) {
      if (ec == std::errc::operation_not_supported) {
        co_return write_outcome{
            ec, false,
            fmt::format("bus {} is Modbus TCP, which has no broadcast: write each device, or "
                        "use framing = \"rtu\" if it is a transparent serial server",
                        name_)};
      }
      spdlog::warn("modbus broadcast failed bus={} addr={} target={} value={} error=\"{}\"", name_,
                   transport_->endpoint(), c.target, c.value, ec.message());
      co_return write_outcome{
          ec, false,
          fmt::format("broadcast {}={} on bus {} failed: {}", c.target, c.value, name_, ec.message())};
    }
    spdlog::info("modbus broadcast bus={} addr={} target={} value={} turnaround_ms={}", name_,
                 transport_->endpoint(), c.target, c.value, settings_->broadcast_turnaround.count());
    co_return write_outcome{
        {},
        false,
        fmt::format("broadcast {}={} to every unit on bus {}; no unit answers a broadcast, "
                    "so nothing confirms it",
                    c.target, c.value, name_)};
  }

  const std::string& where(const device_state& d) const { return d.counters.address; }

  static void count_error(device_state& d, std::error_code ec) {
    auto& c = d.counters;
    c.last_error = ec.message();
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

  /// One poll's outcome for the device's link quality, told when it turns poor or good again.
  void record_quality(device_state& d, std::error_code ec) {
    // A bus that is down is one fault for all its devices, not a quality fault of each.
    if (stopped_ || bus_down_ || d.link != device_state::link::online) return;
    const auto change = d.quality.record(ec);
    if (change == link_quality::change::none) return;
    const bool poor = change == link_quality::change::poor;
    const auto detail = fmt::format("{} at {}", d.quality.summary(), where(d));
    if (poor) {
      spdlog::warn(
          "device answers mostly badly bus={} device={} addr={} detail=\"{}\" check=\"the line's wiring, "
          "termination and earthing (RS-485), two masters on one line, or the gateway or device "
          "sending extra bytes: firegatectl device {}\"",
          name_, d.settings->name, where(d), d.quality.summary(), d.settings->name);
    }
    sink_.on_device_quality({d.settings->name, poor, detail, clock::now()});
  }

  void record_failure(device_state& d, std::error_code ec) {
    if (stopped_) return;
    record_quality(d, ec);
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
      // (it waits as pending); a transport failing again is the bus's again.
      if (d.offline_told == told::bus_back && !bus_down_) hold_back(d);
    } else if (failures >= settings_->offline_after) {
      d.link = device_state::link::offline;
      // Offline covers it from here: the quality window starts over when it answers again.
      d.quality.reset();
      d.schedule.went_offline(steady::now(), settings_->offline_retry_max);
      if (bus_down_) {
        d.offline_told = told::with_bus;
        sink_.on_device_status({d.settings->name, false, ec, where(d), clock::now(), true});
      } else if (devices_.size() > 1 || open_failed_) {
        // One cause may be taking them all: told once the others have failed too (the bus), or as
        // soon as another unit answers (its own silence). The others are asked now, not on their
        // own schedules, and the wait is bounded.
        hold_back(d);
      } else {
        tell_offline(d, ec);
      }
    }
    // Nothing settled it in time (its neighbours failing slowly, not yet offline): its own fault.
    if (d.offline_told == told::pending && steady::now() - d.pending_since >= pending_limit())
      tell_offline(d, ec);
    check_bus_down(ec);
  }

  /// How long a device waits as pending at most before it is told offline on its own: long enough
  /// for every device on a shared line to fail `offline_after` times in turn (each failure costs a
  /// timeout), at least 10 s, and at most 90 s so that a fault is reported within GB 50116's 100 s.
  std::chrono::milliseconds pending_limit() const {
    const auto all =
        settings_->timeout * static_cast<std::int64_t>(devices_.size() * settings_->offline_after);
    return std::clamp<std::chrono::milliseconds>(all + all / 2, std::chrono::seconds(10),
                                                 std::chrono::seconds(90));
  }

  void hold_back(device_state& d) {
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

  /// A device offline on its own: its own device_offline.
  void tell_offline(device_state& d, std::error_code ec) {
    d.offline_told = device_state::told::own;
    spdlog::warn(
        "device offline bus={} device={} addr={} failures={} error=\"{}\" check=\"device power, wiring, "
        "unit id\"",
        name_, d.settings->name, where(d), d.counters.consecutive_failures, ec.message());
    sink_.on_device_status({d.settings->name, false, ec, where(d), clock::now()});
  }

  /// Every device offline, some of them with nothing on the bus answering since: the bus is down.
  /// One bus_offline for the cause, and the devices waiting to be told go offline with it.
  void check_bus_down(std::error_code ec) {
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
    sink_.on_bus_status(status);
    for (auto& d : devices_) {
      if (d.offline_told != told::pending) continue;
      d.offline_told = told::with_bus;
      sink_.on_device_status({d.settings->name, false, ec, where(d), clock::now(), true});
    }
  }

  void record_success(device_state& d, steady::time_point started) {
    using told = device_state::told;
    record_quality(d, {});
    d.counters.consecutive_failures = 0;
    d.counters.last_good = clock::now();
    d.schedule.answered();
    if ((bus_down_ || !bus_known_) && !stopped_) {
      // The bus answers: a fault of it ends (one restored from before a restart too).
      const bool was_down = bus_down_;
      bus_down_ = false;
      bus_known_ = true;
      bus_status status{name_, true, {}, transport_->endpoint(), {}, {}, clock::now(), {}};
      for (const auto& x : devices_) status.devices.push_back(x.settings->name);
      if (was_down) spdlog::info("bus online bus={} addr={}", name_, status.address);
      sink_.on_bus_status(status);
      // The devices that went down with it are asked again now; one that stays silent is told then.
      for (auto& x : devices_) {
        if (x.offline_told != told::with_bus || &x == &d) continue;
        x.offline_told = told::bus_back;
        x.schedule.retry_now(steady::now());
      }
    }
    // Something on the bus answers, so the silence of those waiting is their own.
    for (auto& x : devices_) {
      if (x.offline_told == told::pending && &x != &d && !stopped_) tell_offline(x, x.last_failure);
    }
    if (d.link == device_state::link::offline && !stopped_) {
      spdlog::info("device online bus={} device={} addr={}", name_, d.settings->name, where(d));
      if (d.offline_told != told::pending) {
        sink_.on_device_status({d.settings->name, true, {}, where(d), clock::now()});
      }
      d.schedule.back_online(started);
    }
    d.offline_told = told::nothing;
    d.link = device_state::link::online;
  }

  awaitable<void> pause(worker& w, steady::duration d) { co_await pause_until(w, steady::now() + d); }

  /// Waits while another worker opens the transport. Unlike pause(), it waits even with writes or a
  /// technician's requests queued: returning at once would spin the loop's one thread, and the open
  /// under way could never complete.
  awaitable<void> wait_opening(worker& w) {
    w.pause.expires_after(20ms);
    boost::system::error_code ec;
    co_await w.pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  awaitable<void> pause_until(worker& w, steady::time_point t) {
    if (stopped_ || !writes_.empty() || !raws_.empty()) co_return;
    w.pause.expires_at(t);
    boost::system::error_code ec;
    co_await w.pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  std::string name_;
  std::shared_ptr<const modbus_bus_settings> settings_;
  std::unique_ptr<transport> transport_;
  reading_sink& sink_;
  asio::any_io_executor executor_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::size_t last_{0};  ///< the device polled last, for turns among equally due ones
  bool opening_{false};  ///< a worker is opening the transport; the others wait
  std::vector<device_state> devices_;
  std::vector<pending_write> writes_;  ///< rare and few: a vector costs nothing while empty
  std::vector<pending_raw> raws_;
  std::uint64_t late_polls_{0};
  steady::time_point last_late_warning_{};
  bool link_up_{false};              ///< opened at least once since the last open failure
  bool open_failed_{false};          ///< the last open of the transport failed
  bool bus_down_{false};             ///< a bus_offline has been told and not yet ended
  bool bus_known_{false};            ///< something on the bus has answered since the start
  bool open_failure_logged_{false};  ///< one warning per outage, not one per retry
  bool stopped_{false};
};

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
