#pragma once
// What the platform uplink and the MQTT ingest driver both need from Paho C++ beside their client
// (mqtt_client/loop_client.hpp): a failure's text, TLS options built from a [tls] table, the hint
// for a failed connect; and, for loop_client, a listener that hands a token's outcome to a function
// and the retirement of a client its owner is done with (disconnected and destroyed off the loop).

#include "config/config.hpp"

#include <fmt/format.h>
#include <mqtt/async_client.h>
#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace firegate::paho {

/// Receives Paho's completion callbacks on Paho's thread.
class listener final : public mqtt::iaction_listener {
 public:
  using handler = std::function<void(const mqtt::token&, bool ok)>;
  explicit listener(handler h) : handler_(std::move(h)) {}
  void on_success(const mqtt::token& tok) override { handler_(tok, true); }
  void on_failure(const mqtt::token& tok) override { handler_(tok, false); }

 private:
  handler handler_;
};

/// A Paho client its owner is done with, and what its callbacks use until it is destroyed (the
/// listeners its operations were given). Its callbacks must touch nothing of the owner on Paho's
/// threads but what they post to the loop (paho::loop_client's do only that).
struct retired_client {
  std::unique_ptr<mqtt::async_client> client;
  std::vector<std::unique_ptr<mqtt::iaction_listener>> listeners;
  /// Send DISCONNECT first, giving in-flight messages this long to be acknowledged; nullopt: not
  /// connected, only destroyed.
  std::optional<std::chrono::milliseconds> disconnect;
};

/// Disconnects and destroys `r` on a thread of its own: neither Paho's disconnect (up to its grace,
/// longer on a broker that stopped answering) nor the join of its threads ever holds the loop, so a
/// reload or a stop decides alarms meanwhile. The loop is kept from running out of work until the
/// disconnect has ended, so acknowledgements that arrive in the grace are still handled there.
void retire(retired_client r, boost::asio::any_io_executor loop);

/// Waits for every retired client to be destroyed. After the loop has stopped and before its
/// io_context goes (a retirement posts to it); also done at exit for what is left.
void join_retired();

inline std::string failure_text(const mqtt::token& tok) {
  return fmt::format("{} (rc={})", mqtt::exception::error_str(tok.get_return_code()), tok.get_return_code());
}

/// TLS 1.2 or later; the broker's certificate verified and its name checked unless `verify` is off.
inline mqtt::ssl_options ssl_options(const config::mqtt_tls_config& t) {
  mqtt::ssl_options ssl;
  if (!t.ca_file.empty()) ssl.set_trust_store(t.ca_file);
  if (!t.ca_path.empty()) ssl.ca_path(t.ca_path);
  if (!t.cert_file.empty()) ssl.set_key_store(t.cert_file);
  if (!t.key_file.empty()) ssl.set_private_key(t.key_file);
  if (!t.key_password.empty()) ssl.set_private_key_password(t.key_password);
  ssl.set_enable_server_cert_auth(t.verify);
  ssl.set_verify(t.verify);  // the certificate names the host
  ssl.set_ssl_version(MQTT_SSL_VERSION_TLS_1_2);
  // No set_error_handler: Paho C++ 1.2 hands the C library a pointer to this ssl_options object
  // as the handler's context, and set_ssl() copies it, so OpenSSL's callback would run on a
  // destroyed object (a crash under ASan). The connect failure's hint says what to check instead.
  return ssl;
}

/// The URI Paho connects to: ssl://host:port with TLS, else tcp://host:port.
inline std::string server_uri(const std::string& host, std::uint16_t port, bool tls) {
  return fmt::format("{}://{}:{}", tls ? "ssl" : "tcp", host, port);
}

/// The user name and password on `opts` when given, and TLS (ssl_options) when configured.
inline void set_login(mqtt::connect_options& opts, const std::string& username, const std::string& password,
                      const std::optional<config::mqtt_tls_config>& tls) {
  if (!username.empty()) opts.set_user_name(username);
  if (!password.empty()) opts.set_password(password);
  if (tls) opts.set_ssl(ssl_options(*tls));
}

/// What to check when a connection to `tls` or plain broker fails (Paho reports a failed TLS
/// handshake as a bare failure).
inline const char* connect_hint(bool tls) {
  return tls ? "broker running and its port a TLS one; its certificate signed by ca_file and naming the "
               "host; for mutual TLS, cert_file and key_file from the CA the broker trusts; credentials"
             : "broker running, host and port, credentials";
}

}  // namespace firegate::paho
