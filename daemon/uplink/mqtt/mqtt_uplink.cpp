#include "mqtt_uplink.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <cstdint>
#include <functional>
#include <limits>

#include "mqtt_client/paho_support.hpp"
#include "uplink/mqtt/payloads.hpp"

namespace firegate {
namespace asio = boost::asio;
using namespace std::chrono_literals;

using paho::failure_text;

mqtt_uplink::mqtt_uplink(asio::any_io_executor executor, const config::mqtt_uplink_config& cfg,
                         store_worker& worker, std::string gateway_id, unsigned uplink)
    : executor_(std::move(executor)),
      cfg_(cfg),
      worker_(worker),
      gateway_id_(std::move(gateway_id)),
      uplink_(uplink),
      retry_(executor_),
      pace_(executor_),
      alive_(std::make_shared<bool>(true)) {
  const auto uri = fmt::format("{}://{}:{}", cfg_.tls ? "ssl" : "tcp", cfg_.host, cfg_.port);
  // No Paho persistence: the store is the persistence.
  client_ = std::make_unique<mqtt::async_client>(uri, cfg_.client_id, nullptr);
  const auto post = paho::loop_poster(executor_, alive_);
  connect_listener_ = std::make_unique<paho::listener>([this, post](const mqtt::token& tok, bool ok) {
    if (ok) {
      post([this] { on_connected(); });
    } else {
      post([this, why = failure_text(tok)] { on_connect_failed(why); });
    }
  });
  publish_listener_ = std::make_unique<paho::listener>([this, post](const mqtt::token& tok, bool ok) {
    const auto id = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(tok.get_user_context()));
    post([this, id, ok, why = ok ? std::string() : failure_text(tok)] { on_delivered(id, ok, why); });
  });
  subscribe_listener_ = std::make_unique<paho::listener>([this, post](const mqtt::token& tok, bool ok) {
    post([this, ok, why = ok ? std::string() : failure_text(tok)] {
      // The platform's commands reach this gateway from here on (the broker's SUBACK).
      if (ok) {
        spdlog::info("uplink commands subscribed topic={}", command_topic_);
      } else {
        spdlog::error(
            "uplink cannot subscribe topic={} error=\"{}\" check=\"the broker's ACL for this client\"",
            command_topic_, why);
      }
    });
  });
  client_->set_connection_lost_handler(
      [this, post](const std::string& cause) { post([this, cause] { on_connection_lost(cause); }); });
  client_->set_message_callback([this, post](mqtt::const_message_ptr m) {
    post([this, payload = m->to_string(), retained = m->is_retained()] {
      if (command_handler_) command_handler_(payload, retained);
    });
  });
}

void mqtt_uplink::on_commands(std::string topic,
                              std::function<void(std::string payload, bool retained)> handler) {
  command_topic_ = std::move(topic);
  command_handler_ = std::move(handler);
}

void mqtt_uplink::reply(const std::string& topic, const std::string& payload) {
  publish_now(topic, payload, false, "command reply");
}

void mqtt_uplink::on_presence(std::string topic, std::function<std::string()> will,
                              std::function<void()> online) {
  status_topic_ = std::move(topic);
  will_ = std::move(will);
  online_ = std::move(online);
}

void mqtt_uplink::publish_status(const std::string& payload) {
  if (!status_topic_.empty()) publish_now(status_topic_, payload, true, "status");
}

void mqtt_uplink::publish_now(const std::string& topic, const std::string& payload, bool retained,
                              std::string_view what) {
  if (!connected_) {
    spdlog::debug("{} not sent topic={} reason=\"uplink disconnected\"", what, topic);
    return;
  }
  try {
    client_->publish(topic, payload.data(), payload.size(), 1, retained);
  } catch (const mqtt::exception& e) {
    spdlog::warn("{} not sent topic={} error=\"{}\"", what, topic, e.what());
  }
}

mqtt_uplink::~mqtt_uplink() {
  *alive_ = false;
  alive_.reset();
  retire_client(std::nullopt);  // stopped: already gone; else closed without a goodbye, off the loop
  // Acknowledgements that arrived while a mark was committing: recorded, or they would go again.
  if (!to_mark_.empty()) {
    worker_.post([ids = std::move(to_mark_), uplink = uplink_](store& s) {
      try {
        s.mark_delivered(uplink, ids);
      } catch (const store_error& e) {
        spdlog::error("uplink cannot mark delivered count={} error=\"{}\"", ids.size(), e.what());
      }
    });
  }
}

void mqtt_uplink::start() {
  connect();
}

void mqtt_uplink::connect() {
  if (stopped_ || connected_ || connecting_) return;
  connecting_ = true;
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_3_1_1)
                  .keep_alive_interval(cfg_.keepalive)
                  .clean_session(true)
                  .connect_timeout(5s)
                  .finalize();
  if (!cfg_.username.empty()) opts.set_user_name(cfg_.username);
  if (!cfg_.password.empty()) opts.set_password(cfg_.password);
  if (will_ && !status_topic_.empty()) {
    opts.set_will_message(mqtt::make_message(status_topic_, will_(), 1, true));
  }
  if (cfg_.tls) opts.set_ssl(paho::ssl_options(*cfg_.tls));
  try {
    client_->connect(opts, nullptr, *connect_listener_);
  } catch (const mqtt::exception& e) {
    connecting_ = false;
    on_connect_failed(e.what());
  }
}

void mqtt_uplink::on_connected() {
  if (stopped_) return;  // a connect that completed after stop(): the client is being retired
  connecting_ = false;
  connected_ = true;
  ++connects_;
  backoff_ = 500ms;
  spdlog::info("uplink connected broker={}:{} client_id={} tls={}", cfg_.host, cfg_.port, cfg_.client_id,
               cfg_.tls ? "on" : "off");
  if (!command_topic_.empty()) {
    // A clean session forgets subscriptions: made again on every connect.
    try {
      client_->subscribe(command_topic_, 1, nullptr, *subscribe_listener_);
    } catch (const mqtt::exception& e) {
      spdlog::error(
          "uplink cannot subscribe topic={} error=\"{}\" check=\"the broker's ACL for this client\"",
          command_topic_, e.what());
    }
  }
  if (online_) online_();
  pump();
}

void mqtt_uplink::on_connect_failed(const std::string& why) {
  connecting_ = false;
  // Paho reports a failed TLS handshake as a bare failure: the hint says what to look at.
  spdlog::warn("uplink connect failed broker={}:{} tls={} error=\"{}\" check=\"{}\" retry_within_ms={}",
               cfg_.host, cfg_.port, cfg_.tls ? "on" : "off", why, paho::connect_hint(cfg_.tls.has_value()),
               backoff_.count());
  schedule_reconnect();
}

void mqtt_uplink::on_connection_lost(const std::string& why) {
  if (!connected_) return;
  connected_ = false;
  // What was not acknowledged goes again, in lane order, after the reconnect.
  for (auto& [id, held] : in_flight_) queued_.emplace(held.first, std::move(held.second));
  in_flight_.clear();
  telemetry_in_flight_ = 0;
  spdlog::warn("uplink connection lost broker={}:{} cause=\"{}\"", cfg_.host, cfg_.port, why);
  schedule_reconnect();
}

void mqtt_uplink::schedule_reconnect() {
  if (stopped_) return;
  const auto wait = std::chrono::milliseconds(
      std::uniform_int_distribution<std::int64_t>(backoff_.count() / 2, backoff_.count())(jitter_));
  retry_.expires_after(wait);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(30s));
  retry_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (!ec && alive.lock()) connect();
  });
}

void mqtt_uplink::loop_reply::operator()(std::function<void()> fn) const {
  asio::post(loop, [alive = alive, fn = std::move(fn)] {
    if (alive.lock()) fn();
  });
}

void mqtt_uplink::notify() {
  ++notifications_;
  store_has_more_ = true;
  pump();
}

bool mqtt_uplink::offer(outbox_item item, bool follows) {
  if (known_.contains(item.id)) return true;
  if (order_.must_wait(item, follows)) {
    // It names an earlier event that may still be in the store, unread (after a restart): held
    // until its lane is read to the end, then queued behind what was read (outbox_order.hpp).
    known_.insert(item.id);
    order_.hold(std::move(item));
    return true;
  }
  if (item.lane == lane::telemetry && (!connected_ || queued_.size() >= cfg_.max_in_flight)) {
    store_has_more_ = true;
    ++notifications_;
    return false;
  }
  enqueue(std::move(item));
  pump();
  return true;
}

void mqtt_uplink::enqueue(outbox_item item) {
  known_.insert(item.id);
  enqueue_known(std::move(item));
}

void mqtt_uplink::enqueue_known(outbox_item item) {
  queued_.emplace(queue_key{static_cast<int>(item.lane), arrivals_++}, std::move(item));
}

bool mqtt_uplink::take_telemetry_token() {
  const auto now = std::chrono::steady_clock::now();
  const double rate = cfg_.telemetry_rate;
  tokens_ = std::min(rate, tokens_ + std::chrono::duration<double>(now - tokens_at_).count() * rate);
  tokens_at_ = now;
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  pace_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>((1 - tokens_) / rate)));
  pace_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (!ec && alive.lock()) pump();
  });
  return false;
}

void mqtt_uplink::pump() {
  if (!connected_ || stopped_) return;
  const std::size_t telemetry_slots = std::max<std::size_t>(1, cfg_.max_in_flight * 3 / 4);
  while (in_flight_.size() < cfg_.max_in_flight && !queued_.empty()) {
    auto head = queued_.begin();
    const bool telemetry = head->second.lane == lane::telemetry;
    if (telemetry && (telemetry_in_flight_ >= telemetry_slots || !take_telemetry_token())) break;
    auto& item = head->second;
    auto msg = mqtt::make_message(item.topic, item.payload, 1, false);
    try {
      client_->publish(msg, reinterpret_cast<void*>(static_cast<std::intptr_t>(item.id)), *publish_listener_);
    } catch (const mqtt::exception& e) {
      spdlog::warn("uplink publish failed outbox_id={} topic={} error=\"{}\"", item.id, item.topic, e.what());
      break;
    }
    if (telemetry) ++telemetry_in_flight_;
    const auto id = item.id;
    in_flight_.emplace(id, std::pair{head->first, std::move(item)});
    queued_.erase(head);
  }
  refill();
}

void mqtt_uplink::refill() {
  // Read ahead about one window's worth; events come by offer() the moment they are committed.
  if (refilling_ || !store_has_more_ || queued_.size() >= cfg_.max_in_flight / 2 + 1) return;
  refilling_ = true;
  const auto want = cfg_.max_in_flight - queued_.size();
  const auto generation = notifications_;
  worker_.post([this, reply = reply_to_loop(), want, generation, exclude = known_, uplink = uplink_,
                gateway = gateway_id_](store& s) {
    std::vector<outbox_item> items;
    std::string error;
    try {
      items = s.pending(uplink, want, exclude);
      // Telemetry is stored as readings; its message is written here, off the loop.
      for (auto& item : items) {
        if (item.readings.empty()) continue;
        auto messages = telemetry_messages(item.readings, gateway, std::numeric_limits<std::size_t>::max());
        item.payload = messages.empty() ? std::string() : std::move(messages.front());
        item.readings = {};
      }
    } catch (const store_error& e) {
      error = e.what();
    }
    reply([this, items = std::make_shared<std::vector<outbox_item>>(std::move(items)), error, want,
           generation] {
      refilling_ = false;
      if (!error.empty()) {
        spdlog::error("uplink cannot read the outbox error=\"{}\" action=\"retry on the next notice\"",
                      error);
        store_has_more_ = false;
        // Delivery before order: what waited for this read goes now.
        for (auto& item : order_.read_failed()) enqueue_known(std::move(item));
        pump();
        return;
      }
      auto released = order_.read(*items, want);
      store_has_more_ = items->size() >= want || generation != notifications_;
      for (auto& item : *items) {
        if (!known_.contains(item.id)) enqueue(std::move(item));
      }
      // Behind what was just read: a recovery after its alarm.
      for (auto& item : released) enqueue_known(std::move(item));
      pump();
    });
  });
}

void mqtt_uplink::on_delivered(std::int64_t id, bool ok, const std::string& why) {
  auto held = in_flight_.extract(id);
  if (held.empty()) return;  // the connection was lost first; it is queued again
  auto& [key, item] = held.mapped();
  if (item.lane == lane::telemetry && telemetry_in_flight_ > 0) --telemetry_in_flight_;
  if (ok) {
    last_ack_ = clock::now();
    spdlog::debug("uplink delivered outbox_id={}", id);
    if (id > 0) {
      to_mark_.push_back(id);
      flush_marks();
    } else {
      known_.erase(id);  // held in memory only: nothing to mark
    }
    pump();
  } else {
    // Queued again; it goes after the reconnect that a failed publish leads to.
    spdlog::warn("uplink delivery failed outbox_id={} error=\"{}\"", id, why);
    queued_.emplace(key, std::move(item));
  }
}

void mqtt_uplink::flush_marks() {
  // One transaction for every acknowledgement that arrived while the last one was committing.
  if (marking_ || to_mark_.empty()) return;
  marking_ = true;
  worker_.post([this, reply = reply_to_loop(), ids = std::move(to_mark_), uplink = uplink_](store& s) {
    std::string error;
    try {
      s.mark_delivered(uplink, ids);
    } catch (const store_error& e) {
      error = e.what();  // they stay undelivered and go again: the platform de-duplicates on the id
    }
    reply([this, ids, error] {
      marking_ = false;
      if (!error.empty())
        spdlog::error("uplink cannot mark delivered count={} error=\"{}\"", ids.size(), error);
      for (const auto id : ids) known_.erase(id);
      flush_marks();
    });
  });
  to_mark_.clear();
}

void mqtt_uplink::stop(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  retry_.cancel();
  pace_.cancel();
  const bool was_connected = connected_ && client_ && client_->is_connected();
  connected_ = false;
  // Nothing here waits: the disconnect (with its grace for in-flight messages) runs off the loop,
  // whose acknowledgements still come here and are marked delivered.
  retire_client(was_connected ? std::optional(grace) : std::nullopt);
}

void mqtt_uplink::retire_client(std::optional<std::chrono::milliseconds> disconnect) {
  if (!client_) return;
  paho::retired_client r{std::move(client_), {}, disconnect};
  for (auto* l : {&connect_listener_, &publish_listener_, &subscribe_listener_})
    r.listeners.push_back(std::move(*l));
  paho::retire(std::move(r), executor_);
}

}  // namespace firegate
