#pragma once
// The MQTT uplink as the application drives it (uplink/uplink.hpp): the link (mqtt_uplink.hpp)
// with the platform's presence, the retained status message (birth on each connect, a heartbeat,
// the last will, a goodbye at a stop: docs/uplink.md, "Presence"), and the platform's commands
// (topic cmd in, cmd/reply out, carried out by the application).

#include "uplink/mqtt/mqtt_uplink.hpp"
#include "uplink/uplink.hpp"

#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string_view>

namespace firegate {

class mqtt_platform final : public uplink, public std::enable_shared_from_this<mqtt_platform> {
 public:
  explicit mqtt_platform(const uplink_context& context);
  ~mqtt_platform() override;
  mqtt_platform(const mqtt_platform&) = delete;
  mqtt_platform& operator=(const mqtt_platform&) = delete;

  void start() override;
  /// A goodbye (reason "stopped" or "reconfigured") replaces the retained status; in-flight messages
  /// get 1.5 s (a stop) or 0.5 s (a reload) to be acknowledged, off the loop. Abandoned: neither
  /// (the broker publishes the last will).
  void stop(uplink_stop why) override;
  void notify() override { link_->notify(); }
  void offer(outbox_item item, bool follows) override { link_->offer(std::move(item), follows); }
  bool connected() const override { return link_->connected(); }
  std::size_t connects() const override { return link_->connects(); }
  std::optional<clock::time_point> last_ack() const override { return link_->last_ack(); }
  std::optional<std::chrono::seconds> ack_wait() override { return link_->current_ack_wait(); }
  std::size_t ack_timeouts() const override { return link_->ack_timeouts(); }
  const latency_histogram* ack_latency() const override { return &link_->ack_latency(); }
  const latency_histogram* alarm_latency() const override { return &link_->alarm_latency(); }
  bool carries_commands() const override { return true; }
  void reply(const std::string& payload) override;

 private:
  /// Publishes the retained status with `reason` ("connected", "heartbeat"), with the health read first.
  void publish_status(std::string_view reason);
  void schedule_heartbeat();

  const config::gateway_file& site_;
  uplink_services services_;
  std::shared_ptr<mqtt_uplink> link_;
  boost::asio::steady_timer heartbeat_;
  bool stopped_{false};
};

/// Its line in the registry (uplink/registry.cpp): [uplink.mqtt], delivery bit first, stored telemetry.
uplink_entry mqtt_platform_entry();

}  // namespace firegate
