#include "gb26875_uplink.hpp"

#include "payloads.hpp"

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

std::string hex(std::span<const std::uint8_t> bytes) {
  std::string out;
  for (const auto b : bytes) out += fmt::format("{}{:02X}", out.empty() ? "" : " ", b);
  return out;
}

constexpr auto inspection_window = 10min;
/// Frames of analog values waiting at most.
constexpr std::size_t max_analog_waiting = 16;
constexpr std::size_t read_ahead = 64;

}  // namespace

gb26875_uplink::gb26875_uplink(asio::any_io_executor executor, const config::gb26875_uplink_config& cfg,
                               store_worker& worker, unsigned uplink, gb26875_mapper mapper)
    : executor_(executor),
      cfg_(cfg),
      worker_(worker),
      uplink_(uplink),
      mapper_(std::move(mapper)),
      uitd_(to_address(cfg.uitd_address)),
      centre_(to_address(cfg.centre_address)),
      alive_(std::make_shared<bool>(true)),
      resolver_(executor),
      socket_(executor),
      reconnect_(executor),
      confirm_timer_(executor),
      heartbeat_(executor),
      inspection_timer_(executor) {}

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
  boost::system::error_code ec;
  resolver_.cancel();
  reconnect_.cancel();
  confirm_timer_.cancel();
  heartbeat_.cancel();
  inspection_timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  connected_ = false;
}

// ---- connection --------------------------------------------------------------------------------

void gb26875_uplink::connect() {
  if (stopped_ || connecting_ || connected_) return;
  connecting_ = true;
  resolver_.async_resolve(
      cfg_.host, std::to_string(cfg_.port),
      guarded([this](boost::system::error_code ec, const tcp::resolver::results_type& endpoints) {
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
            socket_, endpoints, guarded([this](boost::system::error_code ec2, const tcp::endpoint&) {
              connecting_ = false;
              if (stopped_) return;
              if (ec2) {
                spdlog::warn(
                    "gb26875 uplink cannot connect centre={}:{} error=\"{}\" check=\"the centre "
                    "runs and listens on that port; the box's network and firewall\"",
                    cfg_.host, cfg_.port, ec2.message());
                boost::system::error_code ignored;
                socket_.close(ignored);
                schedule_reconnect();
                return;
              }
              on_connected();
            }));
      }));
}

void gb26875_uplink::on_connected() {
  connected_ = true;
  ++generation_;
  ++connects_;
  backoff_ = 1000ms;
  next_serial_ = 0;  // per connection
  reader_ = gb::frame_reader();
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  spdlog::info("gb26875 uplink connected centre={}:{} connects={} queued={}", cfg_.host, cfg_.port, connects_,
               queued_.size() + (current_ ? 1 : 0));
  read();
  if (current_) {
    // The frame the last connection left unconfirmed goes first, under this connection's serial.
    current_->serial = next_serial_++;
    current_->sends = 0;
    current_->denies = 0;
    send_current();
  }
  pump();
  // With nothing to send, a heartbeat at once: the centre learns the UITD is there, and the link
  // is tested.
  if (!current_) send_heartbeat();
  schedule_heartbeat();
}

void gb26875_uplink::connection_lost(const std::string& why) {
  if (!connected_) return;
  connected_ = false;
  ++generation_;  // completions of this connection's reads and writes are ignored
  link_abnormal_ = true;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  confirm_timer_.cancel();
  heartbeat_.cancel();
  writes_.clear();
  writing_ = false;
  // A heartbeat or live analog values are not worth keeping; an item is, and goes first on the
  // next connection.
  if (current_ && current_->item.id == 0 && current_->item.what == "analog values") current_.reset();
  if (current_ && current_->heartbeat) current_.reset();
  std::erase_if(queued_, [](const auto& q) { return q.first.first == static_cast<int>(lane::telemetry); });
  spdlog::warn("gb26875 uplink connection lost centre={}:{} error=\"{}\" queued={} action=reconnect",
               cfg_.host, cfg_.port, why, queued_.size() + (current_ ? 1 : 0));
  schedule_reconnect();
}

void gb26875_uplink::schedule_reconnect() {
  if (stopped_) return;
  // Between half and all of the backoff, so gateways that lost the same centre come back spread out.
  const auto half = backoff_.count() / 2;
  const auto wait =
      std::chrono::milliseconds(half + static_cast<long>(jitter_() % static_cast<unsigned>(half + 1)));
  backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 60s);
  reconnect_.expires_after(wait);
  reconnect_.async_wait(guarded([this](boost::system::error_code ec) {
    if (!ec) connect();
  }));
}

void gb26875_uplink::read() {
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      guarded([this, generation = generation_](boost::system::error_code ec, std::size_t n) {
        if (stopped_ || generation != generation_) return;
        if (ec) {
          connection_lost(ec == asio::error::eof ? std::string("closed by the centre") : ec.message());
          return;
        }
        reader_.feed(std::span(read_buffer_.data(), n));
        while (auto r = reader_.next()) {
          if (r->frame) on_frame(*r->frame);
          if (r->fault) on_fault(*r->fault);
          if (!connected_) return;
        }
        read();
      }));
}

// ---- from the centre ---------------------------------------------------------------------------

void gb26875_uplink::on_frame(const gb::frame& f) {
  switch (f.command) {
    case gb::command::confirm:
      on_confirm(f);
      break;
    case gb::command::deny:
      on_deny(f);
      break;
    case gb::command::request:
      on_request(f);
      break;
    case gb::command::control:
      on_control(f);
      break;
    case gb::command::send_data:
      reply(gb::command::confirm, f.serial, {});  // the centre's own data: taken
      break;
    default:
      spdlog::debug("gb26875 uplink ignored frame command={} serial={}", gb::command_name(f.command),
                    f.serial);
      break;
  }
}

void gb26875_uplink::on_fault(const gb::frame_fault& fault) {
  ++counts_.bad_frames;
  ++counts_.denied_by_us;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_fault_log_ >= 10s) {
    last_fault_log_ = now;
    spdlog::warn(
        "gb26875 uplink bad frame from centre={}:{} serial={} error=\"{}\" bad_frames={} action=deny",
        cfg_.host, cfg_.port, fault.serial, fault.detail, counts_.bad_frames);
  }
  reply(gb::command::deny, fault.serial, {});
}

void gb26875_uplink::on_confirm(const gb::frame& f) {
  if (!current_ || f.serial != current_->serial) {
    spdlog::debug("gb26875 uplink confirm for serial={} not waited for", f.serial);
    return;
  }
  confirm_timer_.cancel();
  ++counts_.confirmed;
  last_confirm_ = clock::now();
  counts_.last_latency_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - current_->first_sent)
                                     .count());
  if (link_abnormal_) {
    link_abnormal_ = false;
    spdlog::info("gb26875 uplink link normal centre={}:{}", cfg_.host, cfg_.port);
  }
  if (!current_->heartbeat) {
    spdlog::debug("gb26875 uplink confirmed serial={} what={} outbox_id={} ms={}", f.serial,
                  current_->item.what, current_->item.id, counts_.last_latency_ms);
  }
  done_current();
}

void gb26875_uplink::on_deny(const gb::frame& f) {
  if (!current_ || f.serial != current_->serial) {
    spdlog::debug("gb26875 uplink deny for serial={} not waited for", f.serial);
    return;
  }
  confirm_timer_.cancel();
  ++counts_.denied_by_centre;
  if (++current_->denies < 2) {
    // It may have been damaged on the way: once more, as it was.
    spdlog::warn("gb26875 uplink centre denied serial={} what={} action=\"send once more\"", f.serial,
                 current_->item.what);
    send_current();
    return;
  }
  ++counts_.set_aside;
  spdlog::error(
      "gb26875 uplink centre denied twice serial={} what={} outbox_id={} frame=\"{}\" action=\"set aside: it "
      "would block what comes after it\" check=\"the centre's log for why it refuses this frame; the item "
      "stays on the other uplinks\"",
      f.serial, current_->item.what, current_->item.id,
      hex(gb::encode(make_frame(gb::command::send_data, current_->serial, current_->item.data))));
  done_current();
}

void gb26875_uplink::on_request(const gb::frame& f) {
  std::string error;
  const auto request = gb::decode_app_data(f.data, error);
  const auto* spec = request ? gb::find_type(request->type) : nullptr;
  if (!request || spec == nullptr || spec->uplink || request->type > 88) {
    ++counts_.denied_by_us;
    spdlog::warn("gb26875 uplink request not understood serial={} error=\"{}\" action=deny", f.serial,
                 error.empty() ? fmt::format("type {} is not a read", request ? request->type : 0) : error);
    reply(gb::command::deny, f.serial, {});
    return;
  }
  ++counts_.requests;
  const auto serial = f.serial;
  const auto type = request->type;
  const auto send = [this, serial, type, generation = generation_](std::optional<gb::app_data> answer) {
    if (!connected_ || generation != generation_) return;  // asked on a connection since lost
    if (!answer) {
      ++counts_.denied_by_us;
      spdlog::info("gb26875 uplink request type={} serial={} answer=none action=deny", type, serial);
      reply(gb::command::deny, serial, {});
      return;
    }
    try {
      reply(gb::command::response, serial, gb::encode(*answer));
      spdlog::info("gb26875 uplink request answered type={} serial={} answer_type={} objects={}", type,
                   serial, answer->type, answer->objects.size());
    } catch (const std::exception& e) {
      ++counts_.denied_by_us;
      spdlog::error("gb26875 uplink cannot encode answer type={} error=\"{}\" action=deny", type, e.what());
      reply(gb::command::deny, serial, {});
    }
  };
  // What the UITD itself knows is answered here; the rest by the application.
  const auto now = now_label();
  switch (type) {
    case 85: {
      unsigned major = 0, minor = 0;
      std::sscanf(FIREGATE_VERSION, "%u.%u", &major, &minor);
      send(gb::app_data{25, {{{std::int64_t{major}, std::int64_t{minor}}, now}}});
      return;
    }
    case 88:
      send(gb::app_data{28, {{{now}, now}}});
      return;
    default:
      break;
  }
  if (!query_) {
    send(std::nullopt);
    return;
  }
  query_(*request, guarded(send));
}

void gb26875_uplink::on_control(const gb::frame& f) {
  std::string error;
  const auto command = gb::decode_app_data(f.data, error);
  if (!command || command->objects.empty()) {
    ++counts_.denied_by_us;
    spdlog::warn("gb26875 uplink control command not understood serial={} error=\"{}\" action=deny", f.serial,
                 error.empty() ? "no information object" : error);
    reply(gb::command::deny, f.serial, {});
    return;
  }
  switch (command->type) {
    case 90: {
      const auto* label = std::get_if<gb::time_label>(&command->objects.front().values.front());
      const auto centre_time = label ? label->to_time_point() : std::nullopt;
      if (!centre_time) {
        ++counts_.denied_by_us;
        spdlog::warn("gb26875 uplink clock synchronisation with an invalid time serial={} action=deny",
                     f.serial);
        reply(gb::command::deny, f.serial, {});
        return;
      }
      reply(gb::command::confirm, f.serial, {});
      // To the second: the label has no finer part.
      const auto now = std::chrono::floor<std::chrono::seconds>(clock::now());
      clock_offset_ = *centre_time - now;
      const auto offset_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_offset_).count();
      spdlog::log(
          std::abs(offset_ms) > 60000 ? spdlog::level::warn : spdlog::level::info,
          "gb26875 uplink clock synchronised by the centre centre_time=\"{}\" offset_ms={} action=\"time "
          "labels sent to the centre follow its clock\"{}",
          label->text(), offset_ms,
          std::abs(offset_ms) > 60000 ? " check=\"the box's clock is off by over a minute: its NTP\"" : "");
      const auto t = now_label();
      queue(lane::fault, {0, {}, gb::encode(gb::app_data{28, {{{t}, t}}}), "UITD time"});
      return;
    }
    case 91: {
      reply(gb::command::confirm, f.serial, {});
      ++counts_.inspections;
      inspection_ = inspection{clock::now(), std::chrono::steady_clock::now() + inspection_window};
      spdlog::warn(
          "gb26875 uplink inspection check from the centre action=\"the duty person answers within 10 "
          "minutes: "
          "firegatectl gb26875 answer\"");
      inspection_timer_.expires_after(inspection_window);
      inspection_timer_.async_wait(guarded([this](boost::system::error_code ec) {
        if (ec || !inspection_) return;
        ++counts_.inspections_missed;
        inspection_.reset();
        spdlog::error(
            "gb26875 uplink inspection check not answered within 10 minutes check=\"someone must be on duty "
            "at "
            "this place; the centre records the miss\"");
      }));
      return;
    }
    case 89:
      // The records a fire transmission device keeps are kept through anything (GB 25506 practice).
      ++counts_.denied_by_us;
      spdlog::warn(
          "gb26875 uplink centre asked to initialise the UITD serial={} action=\"deny: firegate does not "
          "erase its records on request\"",
          f.serial);
      reply(gb::command::deny, f.serial, {});
      return;
    default:
      ++counts_.denied_by_us;
      spdlog::warn("gb26875 uplink control command type={} serial={} not supported action=deny",
                   command->type, f.serial);
      reply(gb::command::deny, f.serial, {});
      return;
  }
}

std::string gb26875_uplink::answer_inspection(unsigned operator_number) {
  if (!inspection_) return "the centre has no inspection check waiting";
  if (operator_number > 255) return "the operator number is 0 to 255";
  inspection_.reset();
  inspection_timer_.cancel();
  ++counts_.inspections_answered;
  constexpr std::int64_t inspection_reply = 1 << 5;
  const auto t = now_label();
  queue(lane::alarm, {0,
                      {},
                      gb::encode(gb::app_data{24, {{{inspection_reply, std::int64_t{operator_number}}, t}}}),
                      "inspection answer"});
  spdlog::info("gb26875 uplink inspection check answered operator={}", operator_number);
  return {};
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
  writes_.push_back(std::move(bytes));
  write_next();
}

void gb26875_uplink::write_next() {
  if (writing_ || writes_.empty() || !connected_) return;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(writes_.front()),
                    guarded([this, generation = generation_](boost::system::error_code ec, std::size_t) {
                      if (stopped_ || generation != generation_) return;
                      writing_ = false;
                      if (ec) {
                        connection_lost(ec.message());
                        return;
                      }
                      writes_.pop_front();
                      write_next();
                    }));
}

void gb26875_uplink::notify() {
  ++notifications_;
  store_has_more_ = true;
  pump();
}

void gb26875_uplink::offer(outbox_item item) {
  if (known_.contains(item.id)) return;
  if (item.lane == lane::telemetry) return;  // analog values come from live readings
  known_.insert(item.id);
  const auto what = item.topic.substr(item.topic.rfind('/') + 1);
  queue(item.lane, {item.id, std::move(item.payload), {}, what});
}

void gb26875_uplink::queue(lane l, upload item) {
  queued_.emplace(queue_key{static_cast<int>(l), arrivals_++}, std::move(item));
  pump();
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
  const auto waiting =
      static_cast<std::size_t>(std::count_if(queued_.begin(), queued_.end(), [](const auto& q) {
        return q.first.first == static_cast<int>(lane::telemetry);
      }));
  if (waiting >= max_analog_waiting) {
    ++counts_.analog_dropped;
    return;
  }
  for (auto& d : mapper_.analog(due, clock_offset_)) {
    try {
      queue(lane::telemetry, {0, {}, gb::encode(d), "analog values"});
    } catch (const std::exception& e) {
      spdlog::error("gb26875 uplink cannot encode analog values error=\"{}\"", e.what());
    }
  }
}

void gb26875_uplink::pump() {
  refill();
  if (!connected_ || current_ || stopped_) return;
  while (!queued_.empty()) {
    auto node = queued_.extract(queued_.begin());
    auto item = std::move(node.mapped());
    if (!item.payload.empty()) {
      std::string error;
      const auto data = mapper_.event(item.payload, clock_offset_, error);
      if (!data) {
        // Nothing the standard carries (an acknowledgement), or never sendable: done for this uplink.
        if (!error.empty()) {
          spdlog::error(
              "gb26875 uplink cannot map outbox_id={} error=\"{}\" action=\"not sent to the centre\"",
              item.id, error);
        }
        ++counts_.not_applicable;
        release(item.id);
        continue;
      }
      try {
        item.data = gb::encode(*data);
      } catch (const std::exception& e) {
        spdlog::error(
            "gb26875 uplink cannot encode outbox_id={} error=\"{}\" action=\"not sent to the centre\"",
            item.id, e.what());
        ++counts_.not_applicable;
        release(item.id);
        continue;
      }
    }
    current_ = in_flight{std::move(item), next_serial_++, 0, 0, false, std::chrono::steady_clock::now()};
    send_current();
    refill();
    return;
  }
}

void gb26875_uplink::send_current() {
  if (!connected_ || !current_) return;
  if (current_->sends == 0) current_->first_sent = std::chrono::steady_clock::now();
  ++current_->sends;
  ++counts_.sent;
  if (current_->sends > 1) ++counts_.resent;
  write(gb::encode(make_frame(gb::command::send_data, current_->serial, current_->item.data)));
  confirm_timer_.expires_after(cfg_.confirm_timeout);
  confirm_timer_.async_wait(guarded([this](boost::system::error_code ec) {
    if (!ec) on_confirm_timeout();
  }));
}

void gb26875_uplink::on_confirm_timeout() {
  if (!current_ || !connected_) return;
  if (current_->sends <= cfg_.retries) {
    spdlog::warn(
        "gb26875 uplink no confirm centre={}:{} serial={} what={} within_s={} send={}/{} action=\"send "
        "again\"",
        cfg_.host, cfg_.port, current_->serial, current_->item.what, cfg_.confirm_timeout.count(),
        current_->sends, cfg_.retries + 1);
    link_abnormal_ = true;
    send_current();
    return;
  }
  ++counts_.link_faults;
  link_abnormal_ = true;
  spdlog::error(
      "gb26875 uplink link fault centre={}:{} serial={} what={} sends={} error=\"no confirm\" "
      "action=\"kept queued; reconnecting\" check=\"the centre's state and the network path to it\"",
      cfg_.host, cfg_.port, current_->serial, current_->item.what, current_->sends);
  connection_lost("no confirm after " + std::to_string(current_->sends) + " sends");
}

void gb26875_uplink::done_current() {
  if (!current_) return;
  const auto id = current_->item.id;
  current_.reset();
  release(id);
  schedule_heartbeat();
  pump();
}

void gb26875_uplink::schedule_heartbeat() {
  if (!connected_ || stopped_) return;
  heartbeat_.expires_after(link_abnormal_ ? cfg_.heartbeat_abnormal : cfg_.heartbeat);
  heartbeat_.async_wait(guarded([this](boost::system::error_code ec) {
    if (ec || !connected_) return;
    if (!current_) send_heartbeat();
    schedule_heartbeat();
  }));
}

void gb26875_uplink::send_heartbeat() {
  current_ =
      in_flight{{0, {}, {}, "heartbeat"}, next_serial_++, 0, 0, true, std::chrono::steady_clock::now()};
  send_current();
}

void gb26875_uplink::refill() {
  if (refilling_ || !store_has_more_ || queued_.size() >= read_ahead / 2 || stopped_) return;
  refilling_ = true;
  const auto generation = notifications_;
  worker_.post([this, executor = executor_, alive = std::weak_ptr<bool>(alive_), exclude = known_,
                uplink = uplink_, generation](store& s) {
    std::vector<outbox_item> items;
    std::string error;
    try {
      items = s.pending(uplink, read_ahead, exclude);
    } catch (const store_error& e) {
      error = e.what();
    }
    asio::post(executor, [this, alive, items = std::move(items), error, generation]() mutable {
      if (!alive.lock()) return;
      refilling_ = false;
      if (!error.empty()) {
        spdlog::error(
            "gb26875 uplink cannot read the outbox error=\"{}\" action=\"retry on the next notice\"", error);
        store_has_more_ = false;
        return;
      }
      store_has_more_ = items.size() >= read_ahead || generation != notifications_;
      for (auto& item : items) {
        if (known_.contains(item.id)) continue;
        if (item.lane == lane::telemetry) {
          // Stored before this uplink was configured: analog values go from live readings only.
          known_.insert(item.id);
          to_mark_.push_back(item.id);
          continue;
        }
        offer(std::move(item));
      }
      flush_marks();
      pump();
    });
  });
}

void gb26875_uplink::release(std::int64_t id) {
  if (id > 0) {
    to_mark_.push_back(id);  // delivered (or never sendable) for this uplink
    flush_marks();
  } else if (id < 0) {
    known_.erase(id);  // held in memory only: nothing to mark
  }
}

void gb26875_uplink::flush_marks() {
  if (marking_ || to_mark_.empty()) return;
  marking_ = true;
  worker_.post([this, executor = executor_, alive = std::weak_ptr<bool>(alive_), ids = std::move(to_mark_),
                uplink = uplink_](store& s) {
    std::string error;
    try {
      s.mark_delivered(uplink, ids);
    } catch (const store_error& e) {
      error = e.what();  // they stay undelivered and go again: the centre sees a repeat
    }
    asio::post(executor, [this, alive, ids, error] {
      if (!alive.lock()) return;
      marking_ = false;
      if (!error.empty())
        spdlog::error("gb26875 uplink cannot mark delivered count={} error=\"{}\"", ids.size(), error);
      for (const auto id : ids) known_.erase(id);
      flush_marks();
    });
  });
  to_mark_.clear();
}

nlohmann::json gb26875_uplink::diagnostics() const {
  nlohmann::json j{
      {"centre", fmt::format("{}:{}", cfg_.host, cfg_.port)},
      {"uitd_address", cfg_.uitd_address},
      {"centre_address", cfg_.centre_address},
      {"connected", connected_},
      {"link", connected_ && !link_abnormal_ ? "normal" : "abnormal"},
      {"connects", connects_},
      {"queued", queued_.size() + (current_ && !current_->heartbeat ? 1 : 0)},
      {"sent", counts_.sent},
      {"confirmed", counts_.confirmed},
      {"resent", counts_.resent},
      {"link_faults", counts_.link_faults},
      {"denied_by_centre", counts_.denied_by_centre},
      {"set_aside", counts_.set_aside},
      {"denied_by_us", counts_.denied_by_us},
      {"bad_frames", counts_.bad_frames},
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
