#include "mqtt_uplink.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>

#include "mqtt_client/paho_support.hpp"
#include "uplink/mqtt/payloads.hpp"

namespace firegate {
namespace asio = boost::asio;
using namespace std::chrono_literals;

using paho::failure_text;

namespace {

/// A telemetry item carries its readings (stored once, as readings); its message is written from
/// them when it is about to go, here only.
void write_telemetry(outbox_item& item, const std::string& gateway) {
  if (item.readings.empty()) return;
  auto messages = telemetry_messages(item.readings, gateway, std::numeric_limits<std::size_t>::max());
  item.payload = messages.empty() ? std::string() : std::move(messages.front());
  item.readings = {};
}

}  // namespace

mqtt_uplink::mqtt_uplink(asio::any_io_executor executor, const config::gateway_file& site,
                         store_worker& worker, unsigned uplink, backoff::random_source random)
    : executor_(std::move(executor)),
      cfg_(site.mqtt),
      site_(site),
      gateway_id_(site.gateway.id),
      retry_(executor_),
      pace_(executor_),
      ack_watch_(executor_),
      backoff_(500ms, 30s, std::move(random)),
      outbox_(outbox_reader::make(
          executor_, worker,
          {uplink, cfg_.max_in_flight, true,
           // Telemetry is stored as readings; its message is written on the store's thread.
           [gateway = gateway_id_](outbox_item& item) { write_telemetry(item, gateway); }, "uplink"},
          [this] { pump(); })),
      pacing_(cfg_.telemetry_rate) {
  make_client();
}

void mqtt_uplink::make_client() {
  paho::loop_client::handlers h;
  h.connected = [this](bool) { on_connected(); };
  h.connect_failed = [this](const std::string& why) { on_connect_failed(why); };
  h.connection_lost = [this](const std::string& cause) { on_connection_lost(cause); };
  h.delivered = [this](std::int64_t id, bool ok, const std::string& why) { on_delivered(id, ok, why); };
  h.subscribed = [this](const std::string&, bool ok, const std::string& why) {
    // The platform's commands reach this gateway from here on (the broker's SUBACK).
    if (ok) {
      spdlog::info("uplink commands subscribed topic={}", command_topic_);
    } else {
      spdlog::error(
          "uplink cannot subscribe topic={} error=\"{}\" check=\"the broker's ACL for this client\"",
          command_topic_, why);
    }
  };
  h.message = [this](const std::string&, const std::string& payload, bool retained) {
    if (command_handler_) command_handler_(payload, retained);
  };
  // No Paho persistence: the store is the persistence.
  client_ = std::make_unique<paho::loop_client>(executor_,
                                                paho::server_uri(cfg_.host, cfg_.port, cfg_.tls.has_value()),
                                                cfg_.client_id, MQTTVERSION_3_1_1, std::move(h));
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
    client_->publish_untracked(topic, payload, retained);
  } catch (const mqtt::exception& e) {
    spdlog::warn("{} not sent topic={} error=\"{}\"", what, topic, e.what());
  }
}

mqtt_uplink::~mqtt_uplink() {
  // The client, if not stopped, is closed without a goodbye; the reader no longer reaches here.
  outbox_->stop();
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
  paho::set_login(opts, cfg_.username, cfg_.password, cfg_.tls);
  if (will_ && !status_topic_.empty()) {
    opts.set_will_message(mqtt::make_message(status_topic_, will_(), 1, true));
  }
  try {
    client_->connect(opts);
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
  backoff_.reset();
  spdlog::info("uplink connected broker={}:{} client_id={} tls={}", cfg_.host, cfg_.port, cfg_.client_id,
               cfg_.tls ? "on" : "off");
  if (!command_topic_.empty()) {
    // A clean session forgets subscriptions: made again on every connect.
    try {
      client_->subscribe(command_topic_, 1);
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
               backoff_.step().count());
  schedule_reconnect();
}

void mqtt_uplink::on_connection_lost(const std::string& why) {
  if (!connected_) return;
  connected_ = false;
  waiting_since_.reset();
  ack_wait_.forget_all();
  // What was not acknowledged goes again, in lane order, after the reconnect.
  outbox_->put_back_all();
  telemetry_in_flight_ = 0;
  spdlog::warn("uplink connection lost broker={}:{} cause=\"{}\"", cfg_.host, cfg_.port, why);
  schedule_reconnect();
}

std::chrono::seconds mqtt_uplink::ack_timeout() {
  const auto eased_before = ack_wait_.eased();
  const auto wait = ack_wait_.current(cfg_.ack_timeout, std::chrono::steady_clock::now());
  if (ack_wait_.eased() != eased_before) {
    spdlog::info("uplink acknowledgement wait eased broker={}:{} wait_s={} reason=calm", cfg_.host, cfg_.port,
                 wait.count());
  }
  return wait;
}

std::chrono::seconds mqtt_uplink::ack_deadline() {
  ack_timeout();  // any easing logged first
  return ack_wait_.deadline(cfg_.ack_timeout, std::chrono::steady_clock::now());
}

void mqtt_uplink::watch_acks() {
  if (ack_watch_armed_ || !waiting_since_) return;
  ack_watch_armed_ = true;
  ack_watch_.expires_at(*waiting_since_ + ack_deadline());
  ack_watch_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->ack_watch_armed_ = false;
    if (!ec) self->check_acks();  // nothing after a stop
  });
}

void mqtt_uplink::check_acks() {
  if (stopped_ || !connected_ || !waiting_since_) return;
  if (outbox_->in_flight() == 0) {  // what was in flight failed and went back: nothing to wait for
    waiting_since_.reset();
    return;
  }
  const auto waited = std::chrono::steady_clock::now() - *waiting_since_;
  if (waited < ack_deadline()) {
    watch_acks();  // a PUBACK moved the deadline since the wait was set
    return;
  }
  // The broker has acknowledged nothing for ack_timeout_s with messages in flight: the link is
  // taken as dead. A link that died without closing (the carrier's NAT forgot it, the far end lost
  // power) would otherwise hold an alarm until keepalive_s found it, 1.5 keepalives later. The
  // client is dropped without a goodbye (nothing would carry it) and a new one connects; what was
  // in flight goes again, in lane order. A live but slow broker only sees a reconnect and
  // duplicates, which QoS 1 allows and the platform drops by id.
  ++ack_timeouts_;
  ack_wait_.timed_out(cfg_.ack_timeout, std::chrono::steady_clock::now());
  spdlog::warn(
      "uplink no acknowledgement broker={}:{} waited_ms={} in_flight={} action=reconnect next_wait_s={} "
      "check=\"the link to the broker (a cellular link that died without closing), the broker's load; "
      "on a very slow link raise [uplink.mqtt] ack_timeout_s\"",
      cfg_.host, cfg_.port, std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
      outbox_->in_flight(), ack_timeout().count());
  connected_ = false;
  connecting_ = false;
  waiting_since_.reset();
  outbox_->put_back_all();
  telemetry_in_flight_ = 0;
  client_->retire(std::nullopt);
  make_client();  // the old client's outcomes no longer reach this uplink
  schedule_reconnect();
}

void mqtt_uplink::schedule_reconnect() {
  if (stopped_) return;
  retry_.expires_after(backoff_.next());
  retry_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->connect();  // nothing after a stop
  });
}

void mqtt_uplink::notify() {
  outbox_->notify();
  pump();
}

bool mqtt_uplink::offer(outbox_item item, bool follows) {
  if (item.lane == lane::telemetry && (!connected_ || outbox_->queued() >= cfg_.max_in_flight)) {
    outbox_->left_in_store();
    return false;
  }
  outbox_->offer(std::move(item), follows);
  pump();
  return true;
}

bool mqtt_uplink::take_telemetry_token() {
  const auto now = std::chrono::steady_clock::now();
  if (pacing_.take(now)) return true;
  pace_.expires_after(pacing_.wait(now));
  pace_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->pump();  // nothing after a stop
  });
  return false;
}

void mqtt_uplink::pump() {
  if (!connected_ || stopped_) return;
  const std::size_t telemetry_slots = std::max<std::size_t>(1, cfg_.max_in_flight * 3 / 4);
  while (outbox_->in_flight() < cfg_.max_in_flight) {
    auto* head = outbox_->front();
    if (!head) break;
    const bool telemetry = head->lane == lane::telemetry;
    if (telemetry && (telemetry_in_flight_ >= telemetry_slots || !take_telemetry_token())) break;
    // Written now that it goes (and kept for a resend): an event's message from its record, with
    // the site and the device as they are now; live telemetry's from its readings.
    if (head->event) {
      const auto& e = *head->event;
      head->payload = event_json(e, site_, config::find_device(site_, e.device));
      // An alarm's reading time, for the metrics' latency at its PUBACK (a resend keeps it).
      if ((e.kind == event_kind::fire_alarm || e.kind == event_kind::supervisory_alarm) && !e.test &&
          alarm_read_.size() < 1000)
        alarm_read_.emplace(head->id, e.time);
      head->event.reset();
    } else if (head->payload.empty() && !head->readings.empty()) {
      write_telemetry(*head, site_.gateway.id);  // the id in force, as the events' messages have it
    }
    auto msg = mqtt::make_message(head->topic, head->payload, 1, false);
    try {
      client_->publish(msg, head->id);
    } catch (const mqtt::exception& e) {
      spdlog::warn("uplink publish failed outbox_id={} topic={} error=\"{}\"", head->id, head->topic,
                   e.what());
      break;
    }
    if (telemetry) ++telemetry_in_flight_;
    const auto head_id = head->id;
    outbox_->take();
    const auto now = std::chrono::steady_clock::now();
    ack_wait_.sent(head_id, ack_timeout(), now);  // an easing due now is logged there
    if (!waiting_since_) waiting_since_ = now;
  }
  watch_acks();
  outbox_->refill();
}

void mqtt_uplink::on_delivered(std::int64_t id, bool ok, const std::string& why) {
  const auto* item = outbox_->in_flight_item(id);
  if (!item) return;  // the connection was lost first; it is queued again
  if (item->lane == lane::telemetry && telemetry_in_flight_ > 0) --telemetry_in_flight_;
  if (ok) {
    last_ack_ = clock::now();
    const auto took = ack_wait_.acknowledged(id, cfg_.ack_timeout, std::chrono::steady_clock::now());
    if (took) ack_latency_.observe(*took);
    if (auto read = alarm_read_.find(id); read != alarm_read_.end()) {
      alarm_latency_.observe(*last_ack_ - read->second);
      alarm_read_.erase(read);
    }
    spdlog::debug("uplink delivered outbox_id={} took_ms={}", id,
                  took ? std::chrono::duration_cast<std::chrono::milliseconds>(*took).count() : -1);
    outbox_->done(id);
    // The link is alive: the deadline runs again from now for what is still in flight.
    if (outbox_->in_flight() > 0) {
      waiting_since_ = std::chrono::steady_clock::now();
    } else {
      waiting_since_.reset();
    }
    pump();
  } else {
    // Queued again; it goes after the reconnect that a failed publish leads to.
    spdlog::warn("uplink delivery failed outbox_id={} error=\"{}\"", id, why);
    ack_wait_.forget(id);
    outbox_->put_back(id);
    if (outbox_->in_flight() == 0) waiting_since_.reset();
  }
}

void mqtt_uplink::stop(std::optional<std::chrono::milliseconds> grace) {
  if (stopped_) return;
  stopped_ = true;
  outbox_->stop();
  // Nothing reaches the owner from here on: a command or a connect in the grace is not its.
  command_handler_ = nullptr;
  will_ = nullptr;
  online_ = nullptr;
  retry_.cancel();
  pace_.cancel();
  ack_watch_.cancel();
  const bool was_connected = connected_ && client_->is_connected();
  connected_ = false;
  // Nothing here waits: the disconnect (with its grace for in-flight messages) runs off the loop,
  // whose acknowledgements still come here and are marked delivered.
  client_->retire(was_connected ? grace : std::nullopt);
}

}  // namespace firegate
