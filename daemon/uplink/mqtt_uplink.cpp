#include "mqtt_uplink.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <cstdint>
#include <functional>

namespace firegate {
namespace asio = boost::asio;
using namespace std::chrono_literals;

/// Receives Paho's completion callbacks on Paho's thread and posts them into the loop.
class mqtt_uplink::listener final : public mqtt::iaction_listener {
 public:
  using handler = std::function<void(const mqtt::token&, bool ok)>;
  explicit listener(handler h) : handler_(std::move(h)) {}
  void on_success(const mqtt::token& tok) override { handler_(tok, true); }
  void on_failure(const mqtt::token& tok) override { handler_(tok, false); }

 private:
  handler handler_;
};

namespace {

std::string failure_text(const mqtt::token& tok) {
  return fmt::format("{} (rc={})", mqtt::exception::error_str(tok.get_return_code()), tok.get_return_code());
}

}  // namespace

mqtt_uplink::mqtt_uplink(asio::any_io_executor executor, const config::mqtt_uplink_config& cfg, store& s)
    : executor_(std::move(executor)),
      cfg_(cfg),
      store_(s),
      retry_(executor_),
      alive_(std::make_shared<bool>(true)) {
  const auto uri = fmt::format("tcp://{}:{}", cfg_.host, cfg_.port);
  // No Paho persistence: the store is the persistence.
  client_ = std::make_unique<mqtt::async_client>(uri, cfg_.client_id, nullptr);
  std::weak_ptr<bool> alive = alive_;
  auto post = [this, alive](auto fn) {
    asio::post(executor_, [alive, fn = std::move(fn)] {
      if (alive.lock()) fn();
    });
  };
  connect_listener_ = std::make_unique<listener>([this, post](const mqtt::token& tok, bool ok) {
    if (ok) {
      post([this] { on_connected(); });
    } else {
      post([this, why = failure_text(tok)] { on_connect_failed(why); });
    }
  });
  publish_listener_ = std::make_unique<listener>([this, post](const mqtt::token& tok, bool ok) {
    const auto id = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(tok.get_user_context()));
    post([this, id, ok, why = ok ? std::string() : failure_text(tok)] { on_delivered(id, ok, why); });
  });
  client_->set_connection_lost_handler(
      [this, post](const std::string& cause) { post([this, cause] { on_connection_lost(cause); }); });
}

mqtt_uplink::~mqtt_uplink() {
  *alive_ = false;
  alive_.reset();
  client_.reset();  // joins Paho's threads before the tokens and listeners go
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
  try {
    client_->connect(opts, nullptr, *connect_listener_);
  } catch (const mqtt::exception& e) {
    connecting_ = false;
    on_connect_failed(e.what());
  }
}

void mqtt_uplink::on_connected() {
  connecting_ = false;
  connected_ = true;
  backoff_ = 500ms;
  spdlog::info("uplink connected broker={}:{} client_id={}", cfg_.host, cfg_.port, cfg_.client_id);
  pump();
}

void mqtt_uplink::on_connect_failed(const std::string& why) {
  connecting_ = false;
  spdlog::warn(
      "uplink connect failed broker={}:{} error=\"{}\" check=\"broker running, host and port, credentials\" "
      "retry_in_ms={}",
      cfg_.host, cfg_.port, why, backoff_.count());
  schedule_reconnect();
}

void mqtt_uplink::on_connection_lost(const std::string& why) {
  if (!connected_) return;
  connected_ = false;
  // Unacknowledged items stay in the outbox and go again, in lane order, after the reconnect.
  in_flight_.clear();
  spdlog::warn("uplink connection lost broker={}:{} cause=\"{}\"", cfg_.host, cfg_.port, why);
  schedule_reconnect();
}

void mqtt_uplink::schedule_reconnect() {
  if (stopped_) return;
  retry_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(30s));
  retry_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (!ec && alive.lock()) connect();
  });
}

void mqtt_uplink::notify() {
  pump();
}

void mqtt_uplink::pump() {
  if (!connected_ || stopped_ || in_flight_.size() >= max_in_flight_) return;
  std::vector<outbox_item> items;
  try {
    items = store_.pending(max_in_flight_ - in_flight_.size(), in_flight_);
  } catch (const store_error& e) {
    spdlog::error("uplink cannot read the outbox error=\"{}\" action=\"retry on the next item\"", e.what());
    return;
  }
  for (auto& item : items) {
    auto msg = mqtt::make_message(item.topic, item.payload, 1, false);
    try {
      client_->publish(msg, reinterpret_cast<void*>(static_cast<std::intptr_t>(item.id)), *publish_listener_);
      in_flight_.insert(item.id);
    } catch (const mqtt::exception& e) {
      spdlog::warn("uplink publish failed outbox_id={} topic={} error=\"{}\"", item.id, item.topic, e.what());
      break;
    }
  }
}

void mqtt_uplink::on_delivered(std::int64_t id, bool ok, const std::string& why) {
  in_flight_.erase(id);
  if (ok) {
    try {
      store_.mark_delivered(id);
    } catch (const store_error& e) {
      // It stays in the outbox and goes again: the platform de-duplicates on the message id.
      spdlog::error("uplink cannot mark delivered outbox_id={} error=\"{}\"", id, e.what());
    }
    spdlog::debug("uplink delivered outbox_id={}", id);
    pump();
  } else {
    // Left in the outbox; it goes again after the reconnect that a failed publish leads to.
    spdlog::warn("uplink delivery failed outbox_id={} error=\"{}\"", id, why);
  }
}

void mqtt_uplink::stop(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  retry_.cancel();
  try {
    if (client_->is_connected()) {
      disconnect_token_ = client_->disconnect(static_cast<int>(grace.count()));
      disconnect_token_->wait_for(grace + 1s);
    }
  } catch (const mqtt::exception& e) {
    spdlog::warn("uplink disconnect error=\"{}\"", e.what());
  }
  connected_ = false;
}

}  // namespace firegate
