#pragma once
// The platform uplink over MQTT (Paho C++): publishes the store's outbox in lane order with QoS 1
// and removes an item only when the broker has acknowledged it. Reconnects with capped backoff.
// Paho calls back on its own thread; those callbacks only post into the daemon's loop.

#include "config/config.hpp"
#include "store/store.hpp"

#include <mqtt/async_client.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>

namespace firegate {

/// Owned by the application; every member function runs on its loop.
/// Thread safety: Paho's threads touch only the listener objects, which post to the loop.
class mqtt_uplink {
 public:
  mqtt_uplink(boost::asio::any_io_executor executor, const config::mqtt_uplink_config& cfg, store& s);
  ~mqtt_uplink();
  mqtt_uplink(const mqtt_uplink&) = delete;
  mqtt_uplink& operator=(const mqtt_uplink&) = delete;

  void start();
  /// New items are in the outbox.
  void notify();
  /// Disconnects, giving in-flight messages up to `grace` to be acknowledged.
  void stop(std::chrono::milliseconds grace);
  bool connected() const { return connected_; }
  std::size_t in_flight() const { return in_flight_.size(); }

 private:
  class listener;
  void connect();
  void on_connected();
  void on_connect_failed(const std::string& why);
  void on_connection_lost(const std::string& why);
  void on_delivered(std::int64_t id, bool ok, const std::string& why);
  void schedule_reconnect();
  void pump();

  boost::asio::any_io_executor executor_;
  config::mqtt_uplink_config cfg_;
  store& store_;
  boost::asio::steady_timer retry_;
  std::chrono::milliseconds backoff_{500};
  std::shared_ptr<bool> alive_;  ///< posted handlers check it: the uplink may be gone when they run
  std::unique_ptr<listener> connect_listener_;
  std::unique_ptr<listener> publish_listener_;
  std::unique_ptr<mqtt::async_client> client_;
  /// Kept until client_ is destroyed: Paho 1.2 signals a token's condition variable after waking its
  /// waiter, so a token released right after wait_for() can be destroyed under Paho's thread.
  mqtt::token_ptr disconnect_token_;
  std::set<std::int64_t> in_flight_;
  std::size_t max_in_flight_{32};
  bool connected_{false};
  bool connecting_{false};
  bool stopped_{false};
};

}  // namespace firegate
