#include "modbus_bus.hpp"

#include <fmt/format.h>
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

namespace {

/// State of one device on the bus, owned by the bus coroutine.
struct device_state {
  const modbus_device_settings* settings;
  std::uint32_t consecutive_failures{0};
  enum class link { unknown, online, offline } link{link::unknown};
  /// An offline device is retried with capped exponential backoff, not every cycle: each try costs
  /// a full timeout on a line its neighbours share.
  std::chrono::milliseconds retry_delay{0};
  std::chrono::steady_clock::time_point next_try{};
};

/// Shared with its coroutine so that stop() can return while the coroutine unwinds.
/// Thread safety: every member is used on the daemon's io_context only.
class bus final : public std::enable_shared_from_this<bus> {
 public:
  bus(asio::any_io_executor ex, std::string name, std::shared_ptr<const modbus_bus_settings> settings,
      std::unique_ptr<transport> t, reading_sink& sink)
      : name_(std::move(name)),
        settings_(std::move(settings)),
        transport_(std::move(t)),
        sink_(sink),
        executor_(ex),
        pause_(ex) {
    for (const auto& d : settings_->devices) devices_.push_back({&d});
  }

  void start() {
    asio::co_spawn(
        executor_, [self = shared_from_this()] { return self->run(); }, asio::detached);
  }

  void stop() {
    stopped_ = true;
    transport_->close();
    pause_.cancel();
  }

 private:
  awaitable<void> run() {
    auto backoff = 250ms;
    while (!stopped_) {
      const auto cycle_start = std::chrono::steady_clock::now();
      bool unreachable = false;
      try {
        for (auto& d : devices_) {
          if (stopped_) co_return;
          // A timeout or a framing error closed the transport during the previous device's poll:
          // reopen before the next device, so that one dead unit costs only its own timeout and its
          // neighbours are still read in this cycle.
          if (!transport_->is_open() && !co_await reopen(backoff)) {
            unreachable = true;
            break;
          }
          if (d.link == device_state::link::offline && std::chrono::steady_clock::now() < d.next_try)
            continue;
          co_await poll(d);
        }
      } catch (const std::exception& e) {
        // A bus loop catches at its top, backs off and goes on.
        spdlog::error("modbus bus loop error bus={} addr={} error=\"{}\"", name_, transport_->endpoint(),
                      e.what());
        transport_->close();
        unreachable = true;
      }
      if (unreachable) {
        co_await pause(backoff);
        backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(10s));
      } else {
        backoff = 250ms;
        co_await pause_until(cycle_start + settings_->poll_interval);
      }
    }
  }

  /// Opens the transport; on failure every device on the bus has failed this cycle (the server, the
  /// gateway in front of the devices or the serial port is unreachable).
  awaitable<bool> reopen(std::chrono::milliseconds backoff) {
    if (auto ec = co_await transport_->open(); ec) {
      if (link_up_ || !open_failure_logged_) {
        spdlog::warn(
            "modbus open failed bus={} addr={} error=\"{}\" check=\"device or server present, address, "
            "port or serial device, permissions\" retry_in_ms={}",
            name_, transport_->endpoint(), ec.message(), backoff.count());
        open_failure_logged_ = true;
      }
      link_up_ = false;
      for (auto& d : devices_) record_failure(d, ec);
      co_return false;
    }
    // A reopen after a timeout is routine resynchronisation; only a link that was down is news.
    if (!link_up_) spdlog::info("modbus connected bus={} addr={}", name_, transport_->endpoint());
    link_up_ = true;
    open_failure_logged_ = false;
    co_return true;
  }

  awaitable<void> poll(device_state& d) {
    const auto& profile = *d.settings->profile;
    std::vector<reading> readings;
    readings.reserve(profile.points.size());
    const auto now = clock::now();
    for (const auto& block : profile.blocks) {
      request_.clear();
      encode_request(block.request, request_);
      auto pdu = co_await transport_->transact(d.settings->unit_id, request_);
      if (!pdu) {
        record_failure(d, pdu.error());
        co_return;
      }
      if (auto ec = decode_block(d, profile, block, *pdu, now, readings)) {
        // A well-framed exception or mismatch leaves the stream in step: the transport stays open.
        record_failure(d, ec);
        co_return;
      }
    }
    record_success(d);
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

  std::string where(const device_state& d) const {
    return fmt::format("{} unit {}", transport_->endpoint(), d.settings->unit_id);
  }

  void record_failure(device_state& d, std::error_code ec) {
    if (stopped_) return;
    ++d.consecutive_failures;
    spdlog::debug("modbus poll failed bus={} addr={} device={} unit={} error=\"{}\" consecutive={}", name_,
                  transport_->endpoint(), d.settings->name, d.settings->unit_id, ec.message(),
                  d.consecutive_failures);
    if (d.link == device_state::link::offline) {
      // Still down: wait twice as long before the next try, up to the cap.
      d.retry_delay = std::min(d.retry_delay * 2, settings_->offline_retry_max);
      d.next_try = std::chrono::steady_clock::now() + d.retry_delay;
    } else if (d.consecutive_failures >= settings_->offline_after) {
      d.link = device_state::link::offline;
      d.retry_delay = std::min(std::max(settings_->poll_interval, std::chrono::milliseconds(500)),
                               settings_->offline_retry_max);
      d.next_try = std::chrono::steady_clock::now() + d.retry_delay;
      spdlog::warn(
          "device offline bus={} device={} addr={} unit={} failures={} error=\"{}\" check=\"device power, "
          "wiring, unit id\"",
          name_, d.settings->name, transport_->endpoint(), d.settings->unit_id, d.consecutive_failures,
          ec.message());
      sink_.on_device_status({d.settings->name, false, ec, where(d), clock::now()});
    }
  }

  void record_success(device_state& d) {
    d.consecutive_failures = 0;
    d.retry_delay = std::chrono::milliseconds(0);
    if (d.link == device_state::link::offline && !stopped_) {
      spdlog::info("device online bus={} device={} addr={} unit={}", name_, d.settings->name,
                   transport_->endpoint(), d.settings->unit_id);
      sink_.on_device_status({d.settings->name, true, {}, where(d), clock::now()});
    }
    d.link = device_state::link::online;
  }

  awaitable<void> pause(std::chrono::steady_clock::duration d) {
    co_await pause_until(std::chrono::steady_clock::now() + d);
  }

  awaitable<void> pause_until(std::chrono::steady_clock::time_point t) {
    if (stopped_) co_return;
    pause_.expires_at(t);
    boost::system::error_code ec;
    co_await pause_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  std::string name_;
  std::shared_ptr<const modbus_bus_settings> settings_;
  std::unique_ptr<transport> transport_;
  reading_sink& sink_;
  asio::any_io_executor executor_;
  asio::steady_timer pause_;
  std::vector<device_state> devices_;
  std::vector<std::uint8_t> request_;
  bool link_up_{false};              ///< opened at least once since the last open failure
  bool open_failure_logged_{false};  ///< one warning per outage, not one per retry
  bool stopped_{false};
};

class modbus_bus_driver final : public bus_driver {
 public:
  explicit modbus_bus_driver(std::shared_ptr<bus> b) : bus_(std::move(b)) {}
  ~modbus_bus_driver() override { stop(); }
  void start() override { bus_->start(); }
  void stop() override { bus_->stop(); }

 private:
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
