#pragma once
// The platform uplink over MQTT (Paho C++): publishes the store's outbox in lane order with QoS 1
// and marks an item delivered only when the broker has acknowledged it. Reconnects with capped
// backoff. Paho calls back on its own thread; those callbacks only post into the daemon's loop.
// The store is read and written through its worker thread: the loop never waits on SQLite.
//
// TLS ([uplink.mqtt.tls]) verifies the broker by default; presence is a retained status message
// (birth on connect, heartbeat, last will "offline"). A link that dies without closing (a cellular
// link whose carrier dropped the connection) is found by the acknowledgements: when nothing in flight
// has been acknowledged for [uplink.mqtt] ack_timeout_s, the connection is dropped and made again,
// so an alarm waits that long, whatever keepalive_s says (longer after timeouts in a row: ack_wait.hpp).
// Reconnect backoff doubles from 0.5 s to 30 s, each wait drawn between half and all of it, so that gateways
// that lost the same broker do not all come back in the same instant.
//
// Order: alarms, then faults, then telemetry (live and backlog alternating, store::pending). An
// event is offered the moment it is committed; the backlog is read in batches by the outbox reader
// (uplink/outbox_reader.hpp), also while disconnected, so that a reconnect finds its window ready. Telemetry
// is paced (mqtt.telemetry_rate messages a second) and may hold at most three quarters of the in-flight
// window, so an alarm never waits for a slot.

#include "config/config.hpp"
#include "domain/backoff.hpp"
#include "domain/histogram.hpp"
#include "store/store_worker.hpp"
#include "uplink/mqtt/ack_wait.hpp"
#include "uplink/mqtt/telemetry_pacing.hpp"
#include "uplink/outbox_reader.hpp"

#include "mqtt_client/loop_client.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace firegate {

/// Owned by the application through a shared_ptr: a wait under way (the reconnect's, the pacing's)
/// holds the uplink until its handler has run, and a stopped uplink's handlers do nothing. Every
/// member function runs on the loop. Thread safety: Paho's threads touch nothing of it
/// (paho::loop_client posts to the loop).
class mqtt_uplink : public std::enable_shared_from_this<mqtt_uplink> {
 public:
  /// `site`: the configuration in force, which must outlive the uplink (the application's, replaced
  /// in place by a reload). Its [uplink.mqtt] settings and gateway id are taken as they are now; an
  /// event is rendered with the site's description and the device's as they are when it is sent.
  /// `uplink` is this uplink's delivery bit; `random` draws the reconnect waits (domain/backoff.hpp).
  mqtt_uplink(boost::asio::any_io_executor executor, const config::gateway_file& site, store_worker& worker,
              unsigned uplink = 0, backoff::random_source random = {});
  ~mqtt_uplink();
  mqtt_uplink(const mqtt_uplink&) = delete;
  mqtt_uplink& operator=(const mqtt_uplink&) = delete;

  void start();
  /// New items are in the outbox.
  void notify();
  /// An item to send now: an event just committed (with its `event`), or one the store could not
  /// take (negative id), or telemetry just committed with its readings. Messages are written here as
  /// they go: an event's firegate.event/1 JSON from its record, telemetry's from its readings. Telemetry is
  /// declined (false) while disconnected or while enough is queued: it stays in the store and comes by a
  /// later read. `follows`: its event names an earlier one (a recovery, an acknowledgement, an escalation):
  /// held after a restart until the earlier one cannot still be unread in the store (outbox_order.hpp).
  bool offer(outbox_item item, bool follows = false);
  /// Disconnects, giving in-flight messages up to `grace` to be acknowledged, without waiting: the
  /// client is retired off the loop (paho::retire), and acknowledgements in the grace still arrive.
  /// The handlers given by on_commands and on_presence are not called after it. No grace: the
  /// connection is closed without DISCONNECT, so the broker publishes the last will.
  void stop(std::optional<std::chrono::milliseconds> grace);
  bool connected() const { return connected_; }
  /// Subscribes to `topic` (QoS 1) on every connect; each message's payload goes to `handler` on
  /// the loop. Call before start().
  /// `retained`: the broker's stored copy, sent on subscribing, not a command sent now.
  void on_commands(std::string topic, std::function<void(std::string payload, bool retained)> handler);
  /// Publishes a command's reply (QoS 1, not stored: a reply lost with the connection is asked for
  /// again by the platform; what the command changed is in stored events).
  void reply(const std::string& topic, const std::string& payload);
  /// Presence: `will` gives the last will's payload at each connect (published retained on
  /// `topic` by the broker when the connection is lost without a goodbye); `online` runs on the
  /// loop after each connect, to publish the birth message. Call before start().
  void on_presence(std::string topic, std::function<std::string()> will, std::function<void()> online);
  /// Publishes the gateway's status, retained, QoS 1, not stored (the next heartbeat replaces it).
  void publish_status(const std::string& payload);
  /// Connections made since start().
  std::size_t connects() const { return connects_; }
  /// When the broker last acknowledged a message (PUBACK); nullopt before the first.
  std::optional<clock::time_point> last_ack() const { return last_ack_; }
  std::size_t in_flight() const { return outbox_->in_flight(); }
  /// Connections dropped because the broker acknowledged nothing for ack_timeout_s.
  std::size_t ack_timeouts() const { return ack_timeouts_; }
  /// The acknowledgement wait now: ack_timeout_s, or longer after timeouts (ack_wait.hpp).
  std::chrono::seconds current_ack_wait() { return ack_timeout(); }
  /// Publish to PUBACK of each stored message; an alarm's reading to its PUBACK (the metrics).
  const latency_histogram& ack_latency() const { return ack_latency_; }
  const latency_histogram& alarm_latency() const { return alarm_latency_; }

 private:
  void connect();
  void on_connected();
  void on_connect_failed(const std::string& why);
  void on_connection_lost(const std::string& why);
  void on_delivered(std::int64_t id, bool ok, const std::string& why);
  void schedule_reconnect();
  void make_client();
  /// The acknowledgement deadline: armed while something is in flight, moved by each PUBACK.
  void watch_acks();
  void check_acks();
  /// ack_timeout_s as ack_wait_ stretches it on a slow link.
  std::chrono::seconds ack_timeout();
  /// The deadline's wait: ack_timeout(), or longer for a message still in flight that was sent
  /// under a longer one.
  std::chrono::seconds ack_deadline();
  void publish_now(const std::string& topic, const std::string& payload, bool retained,
                   std::string_view what);
  void pump();
  bool take_telemetry_token();

  boost::asio::any_io_executor executor_;
  config::mqtt_uplink_config cfg_;
  const config::gateway_file& site_;
  std::string gateway_id_;
  boost::asio::steady_timer retry_;
  boost::asio::steady_timer pace_;
  boost::asio::steady_timer ack_watch_;
  /// Since when a message has been in flight with no acknowledgement: the last PUBACK, or the
  /// publish that found nothing in flight. Empty while nothing is in flight.
  std::optional<std::chrono::steady_clock::time_point> waiting_since_;
  bool ack_watch_armed_{false};
  std::size_t ack_timeouts_{0};
  latency_histogram ack_latency_, alarm_latency_;
  /// The reading time of each alarm published and not yet acknowledged (its event is dropped once
  /// its message is written), by outbox id.
  std::map<std::int64_t, clock::time_point> alarm_read_;
  ack_wait ack_wait_;
  backoff backoff_;  ///< 0.5 s doubling to 30 s
  /// The connection: Paho's outcomes come back as handlers on the loop, none after the uplink goes.
  std::unique_ptr<paho::loop_client> client_;
  /// The store's outbox for this uplink, read, queued in lane order and marked (outbox_reader.hpp).
  std::shared_ptr<outbox_reader> outbox_;
  std::size_t telemetry_in_flight_{0};
  telemetry_pacing pacing_;  ///< mqtt.telemetry_rate, the clock's time given at each take
  std::string command_topic_;
  std::function<void(std::string, bool)> command_handler_;
  std::string status_topic_;
  std::function<std::string()> will_;
  std::function<void()> online_;
  std::size_t connects_{0};
  std::optional<clock::time_point> last_ack_;
  bool connected_{false};
  bool connecting_{false};
  bool stopped_{false};
};

}  // namespace firegate
