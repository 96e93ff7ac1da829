#pragma once
// One MQTT connection through Paho C++, seen from the daemon's loop: the client both MQTT links use
// (the platform uplink, the MQTT ingest driver). Paho reports on threads of its own; here every
// outcome (connected, a connect failed, the connection lost, a publish acknowledged, a subscription
// answered, a message) becomes a handler run on the loop, and none runs once the owner has dropped
// its loop_client. Neither owner keeps a flag of its own for that, nor listeners, nor a retirement.
//
// A client the owner is done with is retired off the loop (paho::retire): disconnected with a grace
// for in-flight messages when asked, then destroyed, without the loop waiting for either. The
// handlers stay live until the loop_client itself goes: acknowledgements that come in the grace are
// handled while the owner keeps it (the uplink at a stop), and reach nothing once it is dropped.

#include <mqtt/async_client.h>
#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace firegate::paho {

/// Tells Paho not to initialise OpenSSL when its first client is made: it would load every cipher,
/// digest and error string (+1.3 MiB of libcrypto resident), TLS or not. OpenSSL 1.1 and later then
/// initialise themselves at first use, so a box without TLS does not pay for it. Call it before
/// any Paho client exists (Paho sets its global mutexes up again): first thing in main().
void leave_openssl_to_itself();

class loop_client {
 public:
  /// Each runs on the loop. Any may be left empty.
  struct handlers {
    /// `session_present`: the broker kept this client's session (what arrived meanwhile follows).
    std::function<void(bool session_present)> connected;
    std::function<void(const std::string& why)> connect_failed;
    std::function<void(const std::string& cause)> connection_lost;
    /// A publish() acknowledged (`ok`) or failed (`why`); `tag` is what publish() was given.
    std::function<void(std::int64_t tag, bool ok, const std::string& why)> delivered;
    /// The broker's answer to subscribe() of `filter`.
    std::function<void(const std::string& filter, bool ok, const std::string& why)> subscribed;
    /// A message, copied to the loop. Not called when `arrived` is given.
    std::function<void(const std::string& topic, const std::string& payload, bool retained)> message;
  };
  /// Instead of `message`: called on Paho's thread for each message, so it must touch only what is
  /// safe from there (its own captures, such as a locked inbox); `true` wakes the owner: `ready` runs
  /// on the loop.
  using arrival = std::function<bool(const mqtt::message& m)>;

  /// `uri`: tcp://host:port or ssl://host:port. No Paho persistence: the owner keeps what matters.
  loop_client(boost::asio::any_io_executor loop, const std::string& uri, const std::string& client_id,
              int mqtt_version, handlers h, arrival arrived = {}, std::function<void()> ready = {});
  /// Retires the client if the owner did not (closed without a goodbye); no handler runs after this.
  ~loop_client();
  loop_client(const loop_client&) = delete;
  loop_client& operator=(const loop_client&) = delete;

  /// Starts a connection; `connected` or `connect_failed` says how it went. Throws mqtt::exception
  /// when Paho refuses to start one, as each of the calls below does (and once retired).
  void connect(const mqtt::connect_options& opts);
  /// QoS `qos`; `delivered(tag, ...)` says when the broker acknowledged it. Throws mqtt::exception.
  void publish(const mqtt::const_message_ptr& msg, std::int64_t tag);
  /// QoS 1, nothing said of its outcome (a reply, a status). Throws mqtt::exception.
  void publish_untracked(const std::string& topic, const std::string& payload, bool retained);
  /// `subscribed(filter, ...)` gives the broker's answer. Throws mqtt::exception.
  void subscribe(const std::string& filter, int qos);
  bool is_connected() const;
  /// Hands the Paho client to paho::retire(), sending DISCONNECT first when given a grace; the
  /// handlers keep running until this object goes. Nothing can be sent after it.
  void retire(std::optional<std::chrono::milliseconds> disconnect);

 private:
  struct shared;
  /// The Paho client; throws mqtt::exception once retired.
  mqtt::async_client& live();
  boost::asio::any_io_executor loop_;
  /// What Paho's callbacks reach, through a weak reference taken on the loop.
  std::shared_ptr<shared> shared_;
  std::unique_ptr<mqtt::iaction_listener> connect_listener_, publish_listener_, subscribe_listener_;
  std::unique_ptr<mqtt::async_client> client_;  ///< null once retired
};

}  // namespace firegate::paho
