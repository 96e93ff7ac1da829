#include "mqtt_client/loop_client.hpp"

#include "mqtt_client/paho_support.hpp"

#include <MQTTAsync.h>
#include <boost/asio/post.hpp>

#include <utility>

namespace firegate::paho {

struct loop_client::shared {
  handlers h;
  std::function<void()> ready;
};

namespace {

/// Runs `fn(shared&)` on the loop if the loop_client still exists then.
template <class S, class F>
void on_loop(const boost::asio::any_io_executor& loop, const std::weak_ptr<S>& weak, F fn) {
  boost::asio::post(loop, [weak, fn = std::move(fn)]() mutable {
    if (auto s = weak.lock()) fn(*s);
  });
}

}  // namespace

void leave_openssl_to_itself() {
  MQTTAsync_init_options options = MQTTAsync_init_options_initializer;
  options.do_openssl_init = 0;
  MQTTAsync_global_init(&options);
}

loop_client::loop_client(boost::asio::any_io_executor loop, const std::string& uri,
                         const std::string& client_id, int mqtt_version, handlers h, arrival arrived,
                         std::function<void()> ready)
    : loop_(std::move(loop)), shared_(std::make_shared<shared>(shared{std::move(h), std::move(ready)})) {
  client_ = std::make_unique<mqtt::async_client>(uri, client_id, mqtt::create_options(mqtt_version), nullptr);
  const std::weak_ptr<shared> weak = shared_;
  const auto loop_ex = loop_;
  connect_listener_ = std::make_unique<listener>([weak, loop_ex](const mqtt::token& tok, bool ok) {
    if (!ok) {
      return on_loop(loop_ex, weak, [why = failure_text(tok)](shared& s) {
        if (s.h.connect_failed) s.h.connect_failed(why);
      });
    }
    bool kept = false;
    try {
      kept = tok.get_connect_response().is_session_present();
    } catch (const std::exception&) {
    }
    on_loop(loop_ex, weak, [kept](shared& s) {
      if (s.h.connected) s.h.connected(kept);
    });
  });
  publish_listener_ = std::make_unique<listener>([weak, loop_ex](const mqtt::token& tok, bool ok) {
    const auto tag = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(tok.get_user_context()));
    on_loop(loop_ex, weak, [tag, ok, why = ok ? std::string() : failure_text(tok)](shared& s) {
      if (s.h.delivered) s.h.delivered(tag, ok, why);
    });
  });
  subscribe_listener_ = std::make_unique<listener>([weak, loop_ex](const mqtt::token& tok, bool ok) {
    std::string filter;
    if (const auto topics = tok.get_topics(); topics && topics->size() > 0) filter = (*topics)[0];
    on_loop(loop_ex, weak, [filter, ok, why = ok ? std::string() : failure_text(tok)](shared& s) {
      if (s.h.subscribed) s.h.subscribed(filter, ok, why);
    });
  });
  client_->set_connection_lost_handler([weak, loop_ex](const std::string& cause) {
    on_loop(loop_ex, weak, [cause](shared& s) {
      if (s.h.connection_lost) s.h.connection_lost(cause);
    });
  });
  if (arrived) {
    client_->set_message_callback([weak, loop_ex, arrived = std::move(arrived)](mqtt::const_message_ptr m) {
      if (!arrived(*m)) return;
      on_loop(loop_ex, weak, [](shared& s) {
        if (s.ready) s.ready();
      });
    });
  } else {
    client_->set_message_callback([weak, loop_ex](mqtt::const_message_ptr m) {
      on_loop(loop_ex, weak,
              [topic = m->get_topic(), payload = m->to_string(), retained = m->is_retained()](shared& s) {
                if (s.h.message) s.h.message(topic, payload, retained);
              });
    });
  }
}

loop_client::~loop_client() {
  shared_.reset();  // what Paho posts from now on reaches nothing
  retire(std::nullopt);
}

mqtt::async_client& loop_client::live() {
  if (!client_) throw mqtt::exception(MQTTASYNC_DISCONNECTED, "the client was retired");
  return *client_;
}

void loop_client::connect(const mqtt::connect_options& opts) {
  live().connect(opts, nullptr, *connect_listener_);
}

void loop_client::publish(const mqtt::const_message_ptr& msg, std::int64_t tag) {
  live().publish(msg, reinterpret_cast<void*>(static_cast<std::intptr_t>(tag)), *publish_listener_);
}

void loop_client::publish_untracked(const std::string& topic, const std::string& payload, bool retained) {
  live().publish(topic, payload.data(), payload.size(), 1, retained);
}

void loop_client::subscribe(const std::string& filter, int qos) {
  live().subscribe(filter, qos, nullptr, *subscribe_listener_);
}

bool loop_client::is_connected() const {
  return client_ && client_->is_connected();
}

void loop_client::retire(std::optional<std::chrono::milliseconds> disconnect) {
  if (!client_) return;
  retired_client r{std::move(client_), {}, disconnect};
  for (auto* l : {&connect_listener_, &publish_listener_, &subscribe_listener_})
    r.listeners.push_back(std::move(*l));
  paho::retire(std::move(r), loop_);
}

}  // namespace firegate::paho
