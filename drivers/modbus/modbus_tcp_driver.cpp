#include "modbus_tcp_driver.hpp"

#include "codec/mbap.hpp"
#include "config/suggest.hpp"
#include "modbus_error.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>

namespace firegate::modbus {
namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// The Modbus profiles of this configuration load, read once whatever the number of buses.
const profile_library& profiles_for(config::parse_context& context) {
  auto& slot = context.cache["modbus.profiles"];
  if (!slot) {
    slot = std::make_shared<const profile_library>(
        load_profiles(context.profiles_dir / "modbus", context.errors));
  }
  return *std::static_pointer_cast<const profile_library>(slot);
}

std::shared_ptr<const config::driver_settings> parse_modbus_tcp(config::config_node& bus,
                                                                std::span<config::device_section> devices,
                                                                config::parse_context& context) {
  auto s = std::make_shared<modbus_tcp_settings>();
  s->host =
      bus.get_string("host", config::presence::required, "give the Modbus TCP server's address").value_or("");
  s->port = static_cast<std::uint16_t>(bus.get_integer("port", 1, 65535, 502).value_or(502));
  s->timeout = std::chrono::milliseconds(bus.get_integer("timeout_ms", 50, 60000, 1000).value_or(1000));
  s->poll_interval =
      std::chrono::milliseconds(bus.get_integer("poll_interval_ms", 50, 3600000, 1000).value_or(1000));
  s->offline_after = static_cast<std::uint32_t>(bus.get_integer("offline_after", 1, 100, 3).value_or(3));
  const auto& library = profiles_for(context);
  std::vector<std::string> names;
  for (const auto& [name, profile] : library) names.push_back(name);
  for (auto& d : devices) {
    modbus_device_settings m;
    m.name = d.common.name;
    // Modbus Application Protocol §4.1: unit ids 1–247 address a device; 0 is broadcast.
    m.unit_id = static_cast<std::uint8_t>(d.node.get_integer("unit_id", 1, 247, std::nullopt).value_or(1));
    if (auto p =
            d.node.get_string("profile", config::presence::required, "name a profile, such as \"SD-1\"")) {
      if (auto it = library.find(*p); it != library.end()) {
        m.profile = it->second;
      } else {
        d.node.error("profile", fmt::format("\"{}\" is not a profile in {};{} known: {}", *p,
                                            (context.profiles_dir / "modbus").string(),
                                            config::did_you_mean(*p, names), fmt::join(names, ", ")));
      }
    }
    s->devices.push_back(std::move(m));
  }
  return s;
}

/// State of one device on the bus, owned by the bus coroutine.
struct device_state {
  const modbus_device_settings* settings;
  std::uint32_t consecutive_failures{0};
  enum class link { unknown, online, offline } link{link::unknown};
};

/// The bus: shared with its coroutine so that stop() can return while the coroutine unwinds.
/// Thread safety: every member is used on the daemon's io_context only.
class bus final : public std::enable_shared_from_this<bus> {
 public:
  bus(asio::any_io_executor ex, std::string name, std::shared_ptr<const modbus_tcp_settings> settings,
      reading_sink& sink)
      : name_(std::move(name)),
        settings_(std::move(settings)),
        sink_(sink),
        socket_(ex),
        timeout_(ex),
        pause_(ex) {
    for (const auto& d : settings_->devices) devices_.push_back({&d});
  }

  void start() {
    asio::co_spawn(
        socket_.get_executor(), [self = shared_from_this()] { return self->run(); }, asio::detached);
  }

  void stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    timeout_.cancel();
    pause_.cancel();
  }

 private:
  std::string endpoint() const { return fmt::format("{}:{}", settings_->host, settings_->port); }

  awaitable<void> run() {
    auto backoff = 250ms;
    while (!stopped_) {
      const auto cycle_start = std::chrono::steady_clock::now();
      bool unreachable = false;
      try {
        for (auto& d : devices_) {
          if (stopped_) co_return;
          // A timeout or a framing error closed the connection during the previous device's poll:
          // reconnect before the next device, so that one dead unit costs only its own timeout and
          // its neighbours are still read in this cycle.
          if (!socket_.is_open() && !co_await reconnect(backoff)) {
            unreachable = true;
            break;
          }
          co_await poll(d);
        }
      } catch (const std::exception& e) {
        // A bus loop catches at its top, backs off and goes on.
        spdlog::error("modbus bus loop error bus={} addr={} error=\"{}\"", name_, endpoint(), e.what());
        close();
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

  /// Connects; on failure every device on the bus has failed this cycle (the server, or the gateway in
  /// front of them, is unreachable).
  awaitable<bool> reconnect(std::chrono::milliseconds backoff) {
    if (auto ec = co_await connect(); ec) {
      if (link_up_ || !connect_failure_logged_) {
        spdlog::warn(
            "modbus connect failed bus={} addr={} error=\"{}\" check=\"server running, address and port, "
            "firewall\" retry_in_ms={}",
            name_, endpoint(), ec.message(), backoff.count());
        connect_failure_logged_ = true;
      }
      link_up_ = false;
      for (auto& d : devices_) record_failure(d, ec);
      co_return false;
    }
    // A reconnect after a timeout is routine resynchronisation; only a link that was down is news.
    if (!link_up_) spdlog::info("modbus connected bus={} addr={}", name_, endpoint());
    link_up_ = true;
    connect_failure_logged_ = false;
    co_return true;
  }

  awaitable<std::error_code> connect() {
    boost::system::error_code ec;
    tcp::resolver resolver(socket_.get_executor());
    auto endpoints = co_await resolver.async_resolve(settings_->host, std::to_string(settings_->port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;
    arm_timeout();
    co_await asio::async_connect(socket_, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    co_return finish_io(ec);
  }

  awaitable<void> poll(device_state& d) {
    const auto& profile = *d.settings->profile;
    std::vector<reading> readings;
    readings.reserve(profile.points.size());
    const auto now = clock::now();
    for (const auto& block : profile.blocks) {
      auto pdu = co_await transact(d.settings->unit_id, block.request);
      if (!pdu) {
        record_failure(d, pdu.error());
        co_return;
      }
      if (auto ec = decode_block(d, profile, block, *pdu, now, readings)) {
        // A well-framed exception or mismatch leaves the stream in step: the connection stays.
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

  /// One request and its response PDU. On a timeout or a framing error the connection is closed: the
  /// stream position is unknown, and reconnecting is the only safe resynchronisation.
  awaitable<result<std::vector<std::uint8_t>>> transact(std::uint8_t unit, const read_request& request) {
    pdu_.clear();
    encode_request(request, pdu_);
    const auto tid = ++transaction_id_;
    const auto adu = encode_adu(tid, unit, pdu_);
    boost::system::error_code ec;
    arm_timeout();
    co_await asio::async_write(socket_, asio::buffer(adu), asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      co_await asio::async_read(socket_, asio::buffer(header_),
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) co_return fail_io(ec);
    auto header = decode_mbap(header_);
    if (!header) co_return fail_frame(header.error());
    std::vector<std::uint8_t> response(header->pdu_size());
    co_await asio::async_read(socket_, asio::buffer(response), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return fail_io(ec);
    disarm();
    if (header->transaction_id != tid || header->unit_id != unit) {
      co_return fail_frame(make_error_code(modbus_errc::transaction_mismatch));
    }
    co_return response;
  }

  /// Starts the deadline of one operation. The generation guards against a timer that expired just as
  /// the operation completed: its handler is already queued, and must not close the next one's socket.
  void arm_timeout() {
    timed_out_ = false;
    const auto generation = armed_ = ++generation_;
    timeout_.expires_after(settings_->timeout);
    timeout_.async_wait([self = weak_from_this(), generation](boost::system::error_code ec) {
      auto s = self.lock();
      if (ec || !s || s->armed_ != generation) return;
      s->timed_out_ = true;
      boost::system::error_code ignored;
      s->socket_.close(ignored);
    });
  }

  void disarm() {
    armed_ = 0;
    timeout_.cancel();
  }

  std::error_code finish_io(boost::system::error_code ec) {
    disarm();
    if (timed_out_) return make_error_code(modbus_errc::timeout);
    if (ec) close();
    return ec;
  }

  std::error_code fail_io(boost::system::error_code ec) {
    auto result = finish_io(ec);
    if (ec == asio::error::eof || ec == asio::error::connection_reset)
      result = make_error_code(modbus_errc::connection_closed);
    close();
    return result;
  }

  std::error_code fail_frame(std::error_code ec) {
    disarm();
    close();
    return ec;
  }

  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  void record_failure(device_state& d, std::error_code ec) {
    if (stopped_) return;
    ++d.consecutive_failures;
    spdlog::debug("modbus poll failed bus={} addr={} device={} unit={} error=\"{}\" consecutive={}", name_,
                  endpoint(), d.settings->name, d.settings->unit_id, ec.message(), d.consecutive_failures);
    if (d.link != device_state::link::offline && d.consecutive_failures >= settings_->offline_after) {
      d.link = device_state::link::offline;
      const auto detail = fmt::format("{} unit {}", endpoint(), d.settings->unit_id);
      spdlog::warn(
          "device offline bus={} device={} addr={} unit={} failures={} error=\"{}\" check=\"device power, "
          "wiring, unit id\"",
          name_, d.settings->name, endpoint(), d.settings->unit_id, d.consecutive_failures, ec.message());
      sink_.on_device_status({d.settings->name, false, ec, detail, clock::now()});
    }
  }

  void record_success(device_state& d) {
    d.consecutive_failures = 0;
    if (d.link == device_state::link::offline && !stopped_) {
      spdlog::info("device online bus={} device={} addr={} unit={}", name_, d.settings->name, endpoint(),
                   d.settings->unit_id);
      sink_.on_device_status({d.settings->name,
                              true,
                              {},
                              fmt::format("{} unit {}", endpoint(), d.settings->unit_id),
                              clock::now()});
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
  std::shared_ptr<const modbus_tcp_settings> settings_;
  reading_sink& sink_;
  tcp::socket socket_;
  asio::steady_timer timeout_;
  asio::steady_timer pause_;
  std::vector<device_state> devices_;
  std::uint16_t transaction_id_{0};
  std::vector<std::uint8_t> pdu_;
  std::array<std::uint8_t, mbap_header_size> header_{};
  std::uint64_t generation_{0};
  std::uint64_t armed_{0};  ///< generation of the operation under deadline, 0 when none
  bool timed_out_{false};
  bool link_up_{false};                 ///< connected at least once since the last connect failure
  bool connect_failure_logged_{false};  ///< one warning per outage, not one per retry
  bool stopped_{false};
};

class modbus_tcp_driver final : public bus_driver {
 public:
  explicit modbus_tcp_driver(std::shared_ptr<bus> b) : bus_(std::move(b)) {}
  ~modbus_tcp_driver() override { stop(); }
  void start() override { bus_->start(); }
  void stop() override { bus_->stop(); }

 private:
  std::shared_ptr<bus> bus_;
};

std::unique_ptr<bus_driver> create_modbus_tcp(asio::any_io_executor executor,
                                              const config::bus_config& bus_cfg, reading_sink& sink) {
  auto settings = std::dynamic_pointer_cast<const modbus_tcp_settings>(bus_cfg.settings);
  return std::make_unique<modbus_tcp_driver>(
      std::make_shared<bus>(std::move(executor), bus_cfg.name, std::move(settings), sink));
}

}  // namespace

driver_entry modbus_tcp_driver_entry() {
  return {"modbus_tcp", parse_modbus_tcp, create_modbus_tcp};
}

}  // namespace firegate::modbus
