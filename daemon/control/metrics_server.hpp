#pragma once
// The metrics endpoint ([metrics]; docs/metrics.md): HTTP/1.1 on a TCP port, on the daemon's loop
// (Boost.Beast). GET /metrics answers Prometheus's text format; the text is the application's
// (app/metrics.hpp). This file is the transport only: the listener, the sessions, their limits.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace firegate::control {

/// Connections answered at once; a further one's request is answered 503 and it is closed
/// (Prometheus scrapes one at a time), and past max_metrics_refusals of those a connection is closed
/// as soon as it is accepted.
inline constexpr std::size_t max_metrics_sessions = 8;
inline constexpr std::size_t max_metrics_refusals = 4;
/// A connection with no request under way, or a request not read whole in this time, is closed.
inline constexpr std::chrono::seconds metrics_idle_timeout{30};

class metrics_session;

class metrics_server {
 public:
  /// Makes the exposition and hands it to `done` on the loop (the store is read on its thread
  /// first); `done` holds its session until it is called, and does nothing once the session is closed.
  using scrape = std::function<void(std::function<void(std::string text)> done)>;
  metrics_server(boost::asio::any_io_executor ex, scrape s);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  /// Listens on address:port. Returns "" or what went wrong, with what to check.
  std::string start(const std::string& address, std::uint16_t port);
  /// Closes the listener and every connection.
  void stop();
  /// Where it listens (the port the kernel chose for port 0); nullopt when it does not.
  std::optional<boost::asio::ip::tcp::endpoint> endpoint() const;

 private:
  friend class metrics_session;
  void accept();

  boost::asio::any_io_executor ex_;
  scrape scrape_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  /// Every open session, those being refused (busy) too: stop() closes them all.
  std::vector<std::weak_ptr<metrics_session>> sessions_;
  /// The next accept after one failed.
  boost::asio::steady_timer retry_;
  std::size_t accept_failures_{0};
  std::chrono::steady_clock::time_point accept_failure_logged_{};
  /// Expires with the server: an accept handler queued before its end sees it and does nothing.
  std::shared_ptr<char> alive_;
};

}  // namespace firegate::control
