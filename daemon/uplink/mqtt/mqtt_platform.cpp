#include "mqtt_platform.hpp"

#include "uplink/mqtt/payloads.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace firegate {
using namespace std::chrono_literals;

mqtt_platform::mqtt_platform(const uplink_context& context)
    : site_(context.site),
      services_(context.services),
      link_(
          std::make_shared<mqtt_uplink>(context.executor, context.site, context.store, context.delivery_bit)),
      heartbeat_(context.executor) {}

mqtt_platform::~mqtt_platform() {
  link_->stop(std::nullopt);  // nothing when stopped already
}

void mqtt_platform::start() {
  // The link reaches this object through these until it is stopped (mqtt_uplink::stop forgets them),
  // which this object's stop or destructor does.
  link_->on_commands(topic_for(site_, "cmd"), [this](std::string payload, bool retained) {
    if (!stopped_) services_.command(payload, retained);
  });
  link_->on_presence(
      topic_for(site_, "status"),
      [this] {
        return offline_json(site_, services_.new_event_id(), clock::now(), services_.started,
                            "connection lost");
      },
      [this] { publish_status("connected"); });
  link_->start();
  schedule_heartbeat();
}

void mqtt_platform::stop(uplink_stop why) {
  if (stopped_) return;
  stopped_ = true;
  heartbeat_.cancel();
  if (why == uplink_stop::abandoned) {
    link_->stop(std::nullopt);  // the broker publishes the last will: the platform sees a crash
    return;
  }
  const bool reload = why == uplink_stop::reloaded;
  if (reload) {
    spdlog::info("reload uplink changed broker={}:{} action=reconnect", site_.mqtt.host, site_.mqtt.port);
  }
  // The goodbye replaces the retained status (the broker sends the last will only when the
  // connection is lost without one).
  link_->publish_status(offline_json(site_, services_.new_event_id(), clock::now(), services_.started,
                                     reload ? "reconfigured" : "stopped"));
  // Everything already stored is committed; give in-flight messages a moment to be acknowledged.
  link_->stop(reload ? 500ms : 1500ms);
}

void mqtt_platform::reply(const std::string& payload) {
  link_->reply(topic_for(site_, "cmd/reply"), payload);
}

void mqtt_platform::publish_status(std::string_view reason) {
  services_.with_health([self = shared_from_this(), reason = std::string(reason)](const gateway_health& h) {
    if (!self->stopped_) self->link_->publish_status(status_json(self->site_, h, reason));
  });
}

void mqtt_platform::schedule_heartbeat() {
  heartbeat_.expires_after(site_.mqtt.heartbeat);
  heartbeat_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->stopped_) return;
    if (self->link_->connected()) self->publish_status("heartbeat");
    self->schedule_heartbeat();
  });
}

uplink_entry mqtt_platform_entry() {
  return {"mqtt",
          [](const config::gateway_file& site) { return !site.mqtt.host.empty(); },
          true,
          [](const config::gateway_file& running, const config::gateway_file& next) {
            return running.mqtt != next.mqtt;
          },
          [](config::gateway_file& next, const config::gateway_file& running) { next.mqtt = running.mqtt; },
          [](const uplink_context& context) -> std::shared_ptr<uplink> {
            return std::make_shared<mqtt_platform>(context);
          }};
}

}  // namespace firegate
