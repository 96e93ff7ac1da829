#include "tcp_proxy.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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
  /// Read once, before the proxy's thread uses the acceptor.
  std::uint16_t port{acceptor.local_endpoint().port()};
  /// Every socket ever accepted or opened, kept open until the proxy goes.
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::thread thread;

  asio::awaitable<void> pipe(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to,
                             unsigned born) {
    std::array<char, 16384> buffer;
    try {
      for (;;) {
        const auto n = co_await from->async_read_some(asio::buffer(buffer), asio::use_awaitable);
        if (epoch.load() > born) continue;  // frozen: read and dropped, nothing closed
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
      asio::co_spawn(io, pipe(client, server, born), asio::detached);
      asio::co_spawn(io, pipe(server, client, born), asio::detached);
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

std::size_t freezing_proxy::accepted() const {
  return impl_->accepted.load();
}

}  // namespace firegate::test
