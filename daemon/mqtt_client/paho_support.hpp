#pragma once
// What the platform uplink and the MQTT ingest driver both need from Paho C++: a listener that
// hands a token's outcome to a function (which only posts into the daemon's loop), a failure's
// text, and TLS options built from a [tls] table.

#include "config/config.hpp"

#include <fmt/format.h>
#include <mqtt/async_client.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

#include <functional>
#include <memory>
#include <string>

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

/// Hands work from Paho's threads to the daemon's loop: each function given runs there, and only if
/// its owner (whose `alive` flag this is) still exists by then.
inline auto loop_poster(boost::asio::any_io_executor loop, std::weak_ptr<bool> alive) {
  return [loop = std::move(loop), alive = std::move(alive)](auto fn) {
    boost::asio::post(loop, [alive, fn = std::move(fn)] {
      if (alive.lock()) fn();
    });
  };
}

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

/// What to check when a connection to `tls` or plain broker fails (Paho reports a failed TLS
/// handshake as a bare failure).
inline const char* connect_hint(bool tls) {
  return tls ? "broker running and its port a TLS one; its certificate signed by ca_file and naming the "
               "host; for mutual TLS, cert_file and key_file from the CA the broker trusts; credentials"
             : "broker running, host and port, credentials";
}

}  // namespace firegate::paho
