#pragma once
// The GB/T 26875.3 uplink as the application drives it (uplink/uplink.hpp): the link to the
// centre (gb26875_uplink.hpp) with the gateway's answers to the centre's reads
// (gb26875_answers.hpp), made and gone together.

#include "uplink/gb26875/gb26875_answers.hpp"
#include "uplink/gb26875/gb26875_uplink.hpp"
#include "uplink/uplink.hpp"

#include <memory>

namespace firegate {

class gb26875_link final : public uplink {
 public:
  explicit gb26875_link(const uplink_context& context);
  ~gb26875_link() override;
  gb26875_link(const gb26875_link&) = delete;
  gb26875_link& operator=(const gb26875_link&) = delete;

  void start() override { link_->start(); }
  void stop(uplink_stop why) override;
  void notify() override { link_->notify(); }
  void offer(outbox_item item, bool follows) override { link_->offer(std::move(item), follows); }
  void on_readings(std::span<const reading> readings) override { link_->on_readings(readings); }
  bool connected() const override { return link_->connected(); }
  std::size_t connects() const override { return link_->connects(); }
  const latency_histogram* ack_latency() const override { return &link_->ack_latency(); }
  const latency_histogram* alarm_latency() const override { return &link_->alarm_latency(); }
  /// The link itself, for what a technician asks of it (firegatectl status, gb26875 answer).
  gb26875_uplink& link() { return *link_; }
  const gb26875_uplink& link() const { return *link_; }

 private:
  const config::gateway_file& site_;
  std::shared_ptr<gb26875_uplink> link_;
  std::shared_ptr<gb26875_answers> answers_;
};

/// Its line in the registry (uplink/registry.cpp): [uplink.gb26875], delivery bit after MQTT's; no
/// stored telemetry (it sends analog values from live readings).
uplink_entry gb26875_link_entry();

}  // namespace firegate
