#include "tcp_proxy.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <thread>
#include <vector>

namespace firegate::test {
namespace asio = boost::asio;
using asio::ip::tcp;

struct freezing_proxy::impl {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  std::uint16_t target;
  /// A connection accepted in epoch e is frozen once epoch > e.
  std::atomic<unsigned> epoch{0};
  std::atomic<std::size_t> accepted{0};
  /// Client to server, bytes a second; 0 for no limit.
  std::atomic<std::size_t> rate{0};
  /// Read once, before the proxy's thread uses the acceptor.
  std::uint16_t port{acceptor.local_endpoint().port()};
  /// Every socket ever accepted or opened, kept open until the proxy goes.
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::thread thread;

  asio::awaitable<void> pipe(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to,
                             unsigned born, bool upstream) {
    std::array<char, 16384> buffer;
    asio::steady_timer pace(io);
    try {
      for (;;) {
        const std::size_t bps = upstream ? rate.load() : 0;
        // A slow link carries a small chunk at a time, each after the time its bytes take.
        const auto n = co_await from->async_read_some(asio::buffer(buffer, bps > 0 ? 64 : buffer.size()),
                                                      asio::use_awaitable);
        if (epoch.load() > born) continue;  // frozen: read and dropped, nothing closed
        // The rate now: a read that began before throttle() is paced too.
        if (const std::size_t now_bps = upstream ? rate.load() : 0; now_bps > 0) {
          pace.expires_after(std::chrono::microseconds(n * 1'000'000 / now_bps));
          co_await pace.async_wait(asio::use_awaitable);
        }
        co_await asio::async_write(*to, asio::buffer(buffer, n), asio::use_awaitable);
      }
    } catch (const boost::system::system_error&) {
      // One side closed: pass it on, unless the link is frozen (a dead link carries no FIN either).
      if (epoch.load() <= born) {
        boost::system::error_code ignored;
        to->shutdown(tcp::socket::shutdown_send, ignored);
      }
    }
  }

  asio::awaitable<void> accept() {
    for (;;) {
      auto client = std::make_shared<tcp::socket>(co_await acceptor.async_accept(asio::use_awaitable));
      auto server = std::make_shared<tcp::socket>(io);
      const unsigned born = epoch.load();
      ++accepted;
      try {
        co_await server->async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), target),
                                       asio::use_awaitable);
      } catch (const boost::system::system_error&) {
        continue;  // the target is down: the client's connection is closed, as it would be
      }
      sockets.push_back(client);
      sockets.push_back(server);
      asio::co_spawn(io, pipe(client, server, born, true), asio::detached);
      asio::co_spawn(io, pipe(server, client, born, false), asio::detached);
    }
  }
};

freezing_proxy::freezing_proxy(std::uint16_t target_port) : impl_(std::make_unique<impl>()) {
  impl_->target = target_port;
  asio::co_spawn(impl_->io, impl_->accept(), asio::detached);
  impl_->thread = std::thread([i = impl_.get()] { i->io.run(); });
}

freezing_proxy::~freezing_proxy() {
  impl_->io.stop();
  impl_->thread.join();
}

std::uint16_t freezing_proxy::port() const {
  return impl_->port;
}

void freezing_proxy::freeze() {
  ++impl_->epoch;
}

void freezing_proxy::throttle(std::size_t bytes_per_second) {
  impl_->rate = bytes_per_second;
}

std::size_t freezing_proxy::accepted() const {
  return impl_->accepted.load();
}

}  // namespace firegate::test
