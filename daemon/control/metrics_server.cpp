// The metrics endpoint's transport (docs/metrics.md): Boost.Beast's HTTP/1.1 on the daemon's loop.
// A request is read whole within metrics_idle_timeout, a header of at most 8 KiB and no body; GET
// or HEAD of /metrics is answered with the scrape, / with a line naming it, anything else 404 or
// 405. Connections are kept alive as the client asks.

#include "metrics_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>

namespace firegate::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class metrics_session : public std::enable_shared_from_this<metrics_session> {
 public:
  /// `busy`: one connection too many, answered 503 once its request is read (an answer written
  /// before the request is read may be lost to the reset that closing with unread bytes sends).
  metrics_session(tcp::socket socket, metrics_server& owner, bool busy)
      : stream_(std::move(socket)), owner_(owner), busy_(busy) {}

  void start() { read(); }
  bool busy() const { return busy_; }

  void close() {
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(0);
    // A refused connection gets a moment for its request, not the idle timeout: it holds a file.
    stream_.expires_after(busy_ ? std::chrono::seconds(2) : metrics_idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (closed_) return;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted) {
      return close();
    }
    if (ec) {
      // Not HTTP, a header past 8 KiB, a body: said once, then the close.
      return answer(http::status::bad_request, fmt::format("bad request: {}\n", ec.message()), false, 11);
    }
    const auto& req = parser_->get();
    if (busy_) {
      return answer(http::status::service_unavailable,
                    "too many connections to the metrics endpoint; try again\n", false, req.version(), false,
                    true);
    }
    const auto target = std::string_view(req.target().data(), req.target().size());
    const auto path = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return answer(http::status::method_not_allowed, "only GET and HEAD are served here\n", req.keep_alive(),
                    req.version(), true);
    }
    if (path == "/") {
      return answer(http::status::ok, "firegate: the metrics are at /metrics (docs/metrics.md)\n",
                    req.keep_alive(), req.version());
    }
    if (path != "/metrics") {
      return answer(http::status::not_found, "not found: the metrics are at /metrics\n", req.keep_alive(),
                    req.version());
    }
    const bool head = req.method() == http::verb::head;
    const bool keep_alive = req.keep_alive();
    const unsigned version = req.version();
    stream_.expires_never();  // the scrape reads the store first; the write has its own deadline
    // The callback holds the session while the store is read (nothing else does meanwhile).
    owner_.scrape_([self = shared_from_this(), head, keep_alive, version](std::string text) {
      if (self->closed_) return;
      auto res = std::make_shared<http::response<http::string_body>>(http::status::ok, version);
      res->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res->keep_alive(keep_alive);
      res->body() = std::move(text);
      res->prepare_payload();
      if (head) {
        // The headers say the length GET would have; no body is written.
        const auto length = res->body().size();
        res->body().clear();
        res->content_length(length);
      }
      self->write(std::move(res));
    });
  }

  void answer(http::status status, std::string body, bool keep_alive, unsigned version, bool allow = false,
              bool retry = false) {
    auto res = std::make_shared<http::response<http::string_body>>(status, version);
    res->set(http::field::content_type, "text/plain; charset=utf-8");
    if (allow) res->set(http::field::allow, "GET, HEAD");
    if (retry) res->set(http::field::retry_after, "10");
    res->keep_alive(keep_alive);
    res->body() = std::move(body);
    res->prepare_payload();
    write(std::move(res));
  }

  void write(std::shared_ptr<http::response<http::string_body>> res) {
    stream_.expires_after(metrics_idle_timeout);
    auto& msg = *res;
    http::async_write(stream_, msg, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec || !res->keep_alive()) return self->close();
      self->read();
    });
  }

  beast::tcp_stream stream_;
  metrics_server& owner_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  bool busy_{false};
  bool closed_{false};
};

metrics_server::metrics_server(asio::any_io_executor ex, scrape s)
    : ex_(std::move(ex)), scrape_(std::move(s)), retry_(ex_), alive_(std::make_shared<char>()) {}

metrics_server::~metrics_server() {
  stop();
}

std::string metrics_server::start(const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(address, ec);
  if (ec) return fmt::format("\"{}\" is not an IP address: {}", address, ec.message());
  const tcp::endpoint where(addr, port);
  tcp::acceptor acceptor(ex_);
  if (acceptor.open(where.protocol(), ec); !ec)
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(where, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fmt::format(
        "cannot listen on {}:{}: {}; check that no other program uses the port and that the "
        "address is this box's ([metrics] listen)",
        where.address().is_v6() ? "[" + address + "]" : address, port, ec.message());
  }
  acceptor_.emplace(std::move(acceptor));
  accept();
  return {};
}

void metrics_server::stop() {
  retry_.cancel();
  if (acceptor_) {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    acceptor_.reset();
  }
  for (auto& w : sessions_) {
    if (auto s = w.lock()) s->close();
  }
  sessions_.clear();
}

std::optional<tcp::endpoint> metrics_server::endpoint() const {
  if (!acceptor_) return std::nullopt;
  boost::system::error_code ec;
  auto e = acceptor_->local_endpoint(ec);
  if (ec) return std::nullopt;
  return e;
}

void metrics_server::accept() {
  // A handler already queued when the server stops (a connection accepted in the loop's turn that
  // reloads) still runs: it finds the server gone, or its acceptor closed, and does nothing.
  acceptor_->async_accept([this, alive = std::weak_ptr<char>(alive_)](boost::system::error_code ec,
                                                                      tcp::socket socket) {
    if (alive.expired() || ec == asio::error::operation_aborted || !acceptor_) return;
    if (ec) {
      // Out of file descriptors, say: the listener stays ready, so take a breath before the next
      // accept rather than spin, and say it once a minute at most.
      const auto now = std::chrono::steady_clock::now();
      ++accept_failures_;
      if (now - accept_failure_logged_ >= std::chrono::minutes(1)) {
        spdlog::warn("metrics endpoint accept failed error=\"{}\" failures={} action=\"retrying in 1 s\"",
                     ec.message(), accept_failures_);
        accept_failure_logged_ = now;
        accept_failures_ = 0;
      }
      retry_.expires_after(std::chrono::seconds(1));
      retry_.async_wait([this, alive = std::weak_ptr<char>(alive_)](boost::system::error_code e) {
        if (!e && !alive.expired() && acceptor_) accept();
      });
      return;
    }
    std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
    std::size_t answering = 0;
    for (const auto& w : sessions_) {
      if (auto live = w.lock(); live && !live->busy()) ++answering;
    }
    // Past the refusals too, a connection is closed at once: a flood of them must not take the
    // daemon's file descriptors (its database, its buses, its uplinks need them).
    if (sessions_.size() >= max_metrics_sessions + max_metrics_refusals) {
      boost::system::error_code ignored;
      socket.close(ignored);
      return accept();
    }
    auto s = std::make_shared<metrics_session>(std::move(socket), *this, answering >= max_metrics_sessions);
    sessions_.push_back(s);
    s->start();
    accept();
  });
}

}  // namespace firegate::control
