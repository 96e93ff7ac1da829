#include "gb26875_uplink.hpp"

#include "domain/tcp_self.hpp"
#include "domain/time_text.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

namespace firegate {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
namespace gb = gb26875;

namespace {

gb::address to_address(std::uint64_t n) {
  gb::address a{};
  for (auto& b : a) {
    b = static_cast<std::uint8_t>(n & 0xFF);
    n >>= 8;
  }
  return a;
}

/// Frames of analog values waiting at most.
constexpr std::size_t max_analog_waiting = 16;
constexpr std::size_t read_ahead = 64;

/// The last part of an outbox item's topic: what it is, for the log ("fire_alarm").
std::string what_of(const outbox_item& item) {
  return item.topic.substr(item.topic.rfind('/') + 1);
}

}  // namespace

gb26875_uplink::gb26875_uplink(asio::any_io_executor executor, const config::gb26875_uplink_config& cfg,
                               store_worker& worker, unsigned uplink, gb26875_mapper mapper,
                               backoff::random_source random)
    : executor_(executor),
      cfg_(cfg),
      worker_(worker),
      uplink_(uplink),
      mapper_(std::move(mapper)),
      uitd_(to_address(cfg.uitd_address)),
      centre_(to_address(cfg.centre_address)),
      outbox_(outbox_reader::make(executor, worker, {uplink, read_ahead, false, {}, "gb26875 uplink"},
                                  [this] { pump(); })),
      resolver_(executor),
      reconnect_(executor),
      confirm_timer_(executor),
      heartbeat_(executor),
      inspection_timer_(executor),
      silence_(executor),
      link_(std::make_shared<connection>(executor)),
      exchange_({cfg.confirm_timeout, cfg.retries, cfg.heartbeat, cfg.heartbeat_abnormal}),
      backoff_(1s, 60s, std::move(random)) {}

gb26875_uplink::~gb26875_uplink() {
  stop();
}

void gb26875_uplink::start() {
  spdlog::info("gb26875 uplink starting centre={}:{} uitd_address={} centre_address={}", cfg_.host, cfg_.port,
               cfg_.uitd_address, cfg_.centre_address);
  connect();
}

void gb26875_uplink::stop() {
  if (stopped_) return;
  stopped_ = true;
  outbox_->stop();
  // Nothing reaches the owner from here on.
  query_ = nullptr;
  clock_refused_ = nullptr;
  resolver_.cancel();
  reconnect_.cancel();
  confirm_timer_.cancel();
  heartbeat_.cancel();
  inspection_timer_.cancel();
  silence_.cancel();
  if (connected_) note_skipped(true);
  link_->close();
  connected_ = false;
}

// ---- connection --------------------------------------------------------------------------------

void gb26875_uplink::connection::close() {
  closed = true;
  boost::system::error_code ec;
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
  writes.clear();
  writing = false;
}

void gb26875_uplink::connect() {
  if (stopped_ || connecting_ || connected_) return;
  connecting_ = true;
  link_ = std::make_shared<connection>(executor_);
  resolver_.async_resolve(
      cfg_.host, std::to_string(cfg_.port),
      held([this](boost::system::error_code ec, const tcp::resolver::results_type& endpoints) {
        if (stopped_) return;
        if (ec) {
          connecting_ = false;
          spdlog::warn(
              "gb26875 uplink cannot resolve centre={} error=\"{}\" check=\"the host name in "
              "[uplink.gb26875] and the box's DNS\"",
              cfg_.host, ec.message());
          schedule_reconnect();
          return;
        }
        asio::async_connect(
            link_->socket, endpoints,
            held([this, c = link_](boost::system::error_code ec2, const tcp::endpoint&) {
              connecting_ = false;
              if (stopped_) return;
              if (ec2) {
                spdlog::warn(
                    "gb26875 uplink cannot connect centre={}:{} error=\"{}\" check=\"the centre "
                    "runs and listens on that port; the box's network and firewall\"",
                    cfg_.host, cfg_.port, ec2.message());
                c->close();
                schedule_reconnect();
                return;
              }
              if (connected_to_itself(c->socket)) {
                // Nothing listens at the centre's port, here on this host, and the kernel gave the
                // connection that very port as its own (domain/tcp_self.hpp): a refusal.
                spdlog::warn(
                    "gb26875 uplink cannot connect centre={}:{} error=\"connected to itself: nothing "
                    "listens there\" check=\"the centre runs and listens on that port\"",
                    cfg_.host, cfg_.port);
                close_at_once(c->socket);
                c->close();
                schedule_reconnect();
                return;
              }
              on_connected();
            }));
      }));
}

void gb26875_uplink::on_connected() {
  connected_ = true;
  ++connects_;
  backoff_.reset();
  reader_ = gb::frame_reader();
  skipped_seen_ = 0;
  boost::system::error_code ec;
  link_->socket.set_option(tcp::no_delay(true), ec);
  spdlog::info("gb26875 uplink connected centre={}:{} connects={} queued={}", cfg_.host, cfg_.port, connects_,
               queued());
  read();
  // The frame the last connection left unconfirmed goes first, under this connection's serial.
  exchange_.connected();
  send_current();
  pump();
  // With nothing to send, a heartbeat at once: the centre learns the UITD is there, and the link
  // is tested.
  if (!exchange_.busy()) send_heartbeat();
  schedule_heartbeat();
}

void gb26875_uplink::connection_lost(const std::string& why) {
  if (!connected_) return;
  connected_ = false;
  link_->close();  // completions of its reads and writes do nothing from here on
  exchange_.lost();
  confirm_timer_.cancel();
  heartbeat_.cancel();
  silence_.cancel();
  note_skipped(true);
  // A heartbeat or live analog values are not worth keeping; an item is, and goes first on the
  // next connection.
  if (const auto* w = exchange_.current();
      w && (w->heartbeat || (w->item.id == 0 && w->item.what == "analog values")))
    exchange_.drop();
  std::erase_if(made_, [](const auto& q) { return q.first.first == static_cast<int>(lane::telemetry); });
  spdlog::warn("gb26875 uplink connection lost centre={}:{} error=\"{}\" queued={} action=reconnect",
               cfg_.host, cfg_.port, why, queued());
  schedule_reconnect();
}

void gb26875_uplink::schedule_reconnect() {
  if (stopped_) return;
  // Between half and all of the step, so gateways that lost the same centre come back spread out.
  reconnect_.expires_after(backoff_.next());
  reconnect_.async_wait(held([this](boost::system::error_code ec) {
    if (!ec) connect();
  }));
}

void gb26875_uplink::read() {
  link_->socket.async_read_some(
      asio::buffer(link_->read_buffer), held([this, c = link_](boost::system::error_code ec, std::size_t n) {
        if (stopped_ || c->closed) return;
        if (ec) {
          connection_lost(ec == asio::error::eof ? std::string("closed by the centre") : ec.message());
          return;
        }
        reader_.feed(std::span(c->read_buffer.data(), n));
        while (auto r = reader_.next()) {
          if (r->frame) on_frame(*r->frame);
          if (r->fault) on_fault(*r->fault);
          if (!connected_) return;
        }
        note_skipped(false);
        watch_silence();
        read();
      }));
}

void gb26875_uplink::watch_silence() {
  if (reader_.buffered() == 0) {
    silence_.cancel();
    return;
  }
  // Bytes of a frame not yet complete: if the line stays quiet, it never will be, and what comes
  // next must not be read as its rest.
  silence_.expires_after(incomplete_frame_silence);
  silence_.async_wait(held([this, c = link_](boost::system::error_code ec) {
    if (ec || stopped_ || c->closed || reader_.buffered() == 0) return;
    // A completion already queued when a read re-armed the timer: bytes have come since.
    if (silence_.expiry() > std::chrono::steady_clock::now()) return;
    const auto n = reader_.drop_incomplete();
    spdlog::warn(
        "gb26875 uplink dropped an incomplete frame centre={}:{} bytes={} silence_ms={} check=\"the centre "
        "sent a frame cut short, or bytes that are no frame\"",
        cfg_.host, cfg_.port, n, incomplete_frame_silence.count());
    note_skipped(false);
  }));
}

void gb26875_uplink::note_skipped(bool flush) {
  const auto seen = reader_.skipped();
  if (seen > skipped_seen_) {
    counts_.skipped_bytes += seen - skipped_seen_;
    skipped_unlogged_ += seen - skipped_seen_;
    skipped_seen_ = seen;
  }
  const auto now = std::chrono::steady_clock::now();
  if (skipped_unlogged_ == 0 || (!flush && now - last_skip_log_ < 10s)) return;
  last_skip_log_ = now;
  spdlog::warn(
      "gb26875 uplink skipped bytes centre={}:{} bytes={} skipped_total={} check=\"bytes from the centre "
      "that were no frame: the centre's software, or something else writing to this connection\"",
      cfg_.host, cfg_.port, skipped_unlogged_, counts_.skipped_bytes);
  skipped_unlogged_ = 0;
}

// ---- to the centre -----------------------------------------------------------------------------

gb::time_label gb26875_uplink::now_label() const {
  return gb::local_time_label(clock::now() + clock_offset_);
}

gb::frame gb26875_uplink::make_frame(std::uint8_t command, std::uint16_t serial,
                                     std::vector<std::uint8_t> data) const {
  gb::frame f;
  f.serial = serial;
  f.time = now_label();
  f.source = uitd_;
  f.destination = centre_;
  f.command = command;
  f.data = std::move(data);
  return f;
}

void gb26875_uplink::reply(std::uint8_t command, std::uint16_t serial, std::vector<std::uint8_t> data) {
  write(gb::encode(make_frame(command, serial, std::move(data))));
}

void gb26875_uplink::write(std::vector<std::uint8_t> bytes) {
  if (!connected_) return;
  link_->writes.push_back(std::move(bytes));
  write_next();
}

void gb26875_uplink::write_next() {
  const auto& c = link_;
  if (c->writing || c->writes.empty() || !connected_) return;
  c->writing = true;
  asio::async_write(c->socket, asio::buffer(c->writes.front()),
                    held([this, c](boost::system::error_code ec, std::size_t) {
                      if (stopped_ || c->closed) return;
                      c->writing = false;
                      if (ec) {
                        connection_lost(ec.message());
                        return;
                      }
                      c->writes.pop_front();
                      write_next();
                    }));
}

void gb26875_uplink::notify() {
  outbox_->notify();
  pump();
}

void gb26875_uplink::offer(outbox_item item, bool follows) {
  if (item.lane == lane::telemetry) return;  // analog values come from live readings
  outbox_->offer(std::move(item), follows);
  pump();
}

void gb26875_uplink::queue(lane l, upload item) {
  made_.emplace(queue_key{static_cast<int>(l), arrivals_++}, std::move(item));
  pump();
}

std::size_t gb26875_uplink::queued() const {
  return outbox_->queued() + made_.size() + (exchange_.busy() && !exchange_.current()->heartbeat ? 1 : 0);
}

void gb26875_uplink::on_readings(std::span<const reading> readings) {
  if (cfg_.analog_interval.count() == 0 || readings.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  std::vector<reading> due;
  for (const auto& r : readings) {
    if (r.q != quality::good || !gb_analog_code_of(r.unit)) continue;
    auto [it, fresh] = analog_sent_.try_emplace({r.device, r.point}, now);
    if (!fresh && now - it->second < cfg_.analog_interval) continue;
    it->second = now;
    due.push_back(r);
  }
  if (!connected_) return;  // live values only: the next interval sends fresh ones
  // Live values: a slow centre must not make them pile up (alarms never wait behind them anyway).
  const auto waiting = static_cast<std::size_t>(std::count_if(made_.begin(), made_.end(), [](const auto& q) {
    return q.first.first == static_cast<int>(lane::telemetry);
  }));
  if (waiting >= max_analog_waiting) {
    ++counts_.analog_dropped;
    return;
  }
  for (auto& d : mapper_.analog(due, clock_offset_)) {
    try {
      queue(lane::telemetry, {0, gb::encode(d), "analog values"});
    } catch (const std::exception& e) {
      spdlog::error("gb26875 uplink cannot encode analog values error=\"{}\"", e.what());
    }
  }
}

void gb26875_uplink::pump() {
  if (!connected_ || exchange_.busy() || stopped_) return;
  // The outbox's items and what is made here (replies to the centre, analog values) in lane order;
  // on the same lane the outbox's first (an alarm before the answer to an inspection check).
  while (const auto* head = outbox_->front()) {
    if (!made_.empty() && made_.begin()->first.first < static_cast<int>(head->lane)) break;
    const auto& item = outbox_->take();
    upload up{item.id, {}, what_of(item)};
    // A fire or supervisory alarm's reading time, for the metrics' delivery latency.
    if (item.event && !item.event->test &&
        (item.event->kind == event_kind::fire_alarm || item.event->kind == event_kind::supervisory_alarm))
      up.alarm_read = item.event->time;
    std::string error = item.event ? std::string() : "no event behind it";
    const auto data = item.event ? mapper_.event(*item.event, clock_offset_, error) : std::nullopt;
    if (!data) {
      // Nothing the standard carries (an acknowledgement), or never sendable: done for this uplink.
      if (!error.empty()) {
        spdlog::error("gb26875 uplink cannot map outbox_id={} error=\"{}\" action=\"not sent to the centre\"",
                      up.id, error);
      }
      ++counts_.not_applicable;
      outbox_->done(up.id);
      continue;
    }
    try {
      up.data = gb::encode(*data);
    } catch (const std::exception& e) {
      spdlog::error(
          "gb26875 uplink cannot encode outbox_id={} error=\"{}\" action=\"not sent to the centre\"", up.id,
          e.what());
      ++counts_.not_applicable;
      outbox_->done(up.id);
      continue;
    }
    exchange_.begin(std::move(up), false);
    send_current();
    return;
  }
  if (made_.empty()) return;
  auto node = made_.extract(made_.begin());
  exchange_.begin(std::move(node.mapped()), false);
  send_current();
}

void gb26875_uplink::send_current() {
  if (!connected_ || !exchange_.busy()) return;
  const auto deadline = exchange_.send(std::chrono::steady_clock::now());
  const auto& w = *exchange_.current();
  ++counts_.sent;
  if (w.sends > 1) ++counts_.resent;
  write(gb::encode(make_frame(gb::command::send_data, w.serial, w.item.data)));
  confirm_timer_.expires_at(deadline);
  confirm_timer_.async_wait(held([this](boost::system::error_code ec) {
    if (!ec) on_confirm_timeout();
  }));
}

void gb26875_uplink::on_confirm_timeout() {
  if (!connected_) return;
  const auto step = exchange_.on_timeout(std::chrono::steady_clock::now());
  if (step == gb26875_exchange::step::not_waited_for) return;
  const auto& w = *exchange_.current();
  if (step == gb26875_exchange::step::send_again) {
    spdlog::warn(
        "gb26875 uplink no confirm centre={}:{} serial={} what={} within_s={} send={}/{} action=\"send "
        "again\"",
        cfg_.host, cfg_.port, w.serial, w.item.what, cfg_.confirm_timeout.count(), w.sends, cfg_.retries + 1);
    send_current();
    return;
  }
  ++counts_.link_faults;
  spdlog::error(
      "gb26875 uplink link fault centre={}:{} serial={} what={} sends={} error=\"no confirm\" "
      "action=\"kept queued; reconnecting\" check=\"the centre's state and the network path to it\"",
      cfg_.host, cfg_.port, w.serial, w.item.what, w.sends);
  connection_lost("no confirm after " + std::to_string(w.sends) + " sends");
}

void gb26875_uplink::done_current() {
  if (!exchange_.busy()) return;
  const auto id = exchange_.finish().id;
  if (id != 0) outbox_->done(id);  // delivered, or set aside: done for this uplink
  schedule_heartbeat();
  pump();
}

void gb26875_uplink::schedule_heartbeat() {
  if (!connected_ || stopped_) return;
  heartbeat_.expires_after(exchange_.heartbeat_interval());
  heartbeat_.async_wait(held([this](boost::system::error_code ec) {
    if (ec || !connected_) return;
    if (!exchange_.busy()) send_heartbeat();
    note_skipped(false);  // skipped bytes not yet logged get their line within a heartbeat
    schedule_heartbeat();
  }));
}

void gb26875_uplink::send_heartbeat() {
  exchange_.begin({0, {}, "heartbeat"}, true);
  send_current();
}

nlohmann::json gb26875_uplink::diagnostics() const {
  nlohmann::json j{
      {"centre", fmt::format("{}:{}", cfg_.host, cfg_.port)},
      {"uitd_address", cfg_.uitd_address},
      {"centre_address", cfg_.centre_address},
      {"connected", connected_},
      {"link", connected_ && !exchange_.link_abnormal() ? "normal" : "abnormal"},
      {"connects", connects_},
      {"queued", queued()},
      {"sent", counts_.sent},
      {"confirmed", counts_.confirmed},
      {"resent", counts_.resent},
      {"link_faults", counts_.link_faults},
      {"denied_by_centre", counts_.denied_by_centre},
      {"set_aside", counts_.set_aside},
      {"denied_by_us", counts_.denied_by_us},
      {"bad_frames", counts_.bad_frames},
      {"skipped_bytes", counts_.skipped_bytes},
      {"denies_suppressed", counts_.denies_suppressed},
      {"requests", counts_.requests},
      {"not_applicable", counts_.not_applicable},
      {"analog_dropped", counts_.analog_dropped},
      {"last_confirm_ms", counts_.last_latency_ms},
      {"clock_offset_ms", std::chrono::duration_cast<std::chrono::milliseconds>(clock_offset_).count()},
      {"inspections",
       {{"asked", counts_.inspections},
        {"answered", counts_.inspections_answered},
        {"missed", counts_.inspections_missed}}},
  };
  if (last_confirm_) j["last_confirm"] = iso8601(*last_confirm_);
  if (inspection_) {
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(inspection_->deadline -
                                                                       std::chrono::steady_clock::now());
    j["inspection"] = {{"asked", iso8601(inspection_->asked)},
                       {"seconds_left", std::max<long>(0, left.count())}};
  }
  return j;
}

}  // namespace firegate
