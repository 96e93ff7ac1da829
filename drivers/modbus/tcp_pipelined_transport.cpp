#include "tcp_pipelined_transport.hpp"

#include "codec/mbap.hpp"
#include "modbus_error.hpp"
#include "tcp_transport.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>

namespace firegate::modbus {
namespace asio = boost::asio;
using asio::ip::tcp;

tcp_pipelined_transport::tcp_pipelined_transport(asio::any_io_executor ex, std::string host,
                                                 std::uint16_t port, std::chrono::milliseconds timeout)
    : executor_(ex),
      host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      link_(std::make_shared<connection>(ex, fmt::format("{}:{}", host_, port_))),
      connect_deadline_(ex, [this] { close(); }) {}

tcp_pipelined_transport::~tcp_pipelined_transport() {
  // Only the socket: the requests' frames may be going too (the loop destroying its handlers).
  boost::system::error_code ignored;
  link_->socket.close(ignored);
}

std::string tcp_pipelined_transport::endpoint() const {
  return link_->endpoint;
}

void tcp_pipelined_transport::close() {
  link_->fail_all(make_error_code(modbus_errc::connection_closed));
}

void tcp_pipelined_transport::connection::fail_all(std::error_code ec) {
  boost::system::error_code ignored;
  socket.close(ignored);
  outgoing.clear();
  for (auto& [tid, p] : waiting) {
    if (!p->outcome) p->outcome = ec;
    p->wake.cancel();
  }
  waiting.clear();
}

asio::awaitable<std::error_code> tcp_pipelined_transport::open() {
  // A connection of its own: the reader and writer of the last one, if still under way, keep theirs.
  link_ = std::make_shared<connection>(executor_, endpoint());
  const auto c = link_;
  auto ec = co_await connect_tcp(c->socket, host_, port_, timeout_, connect_deadline_);
  if (ec) co_return ec;
  asio::co_spawn(executor_, read_loop(c), asio::detached);
  co_return std::error_code{};
}

asio::awaitable<result<std::vector<std::uint8_t>>> tcp_pipelined_transport::transact(
    std::uint8_t unit, std::span<const std::uint8_t> pdu) {
  const auto c = link_;  // answered on the connection it was sent on, or failed with it
  if (!c->socket.is_open()) co_return make_error_code(modbus_errc::connection_closed);
  auto tid = ++transaction_id_;
  while (c->waiting.contains(tid)) tid = ++transaction_id_;
  pending p{unit, asio::steady_timer(executor_), std::nullopt};
  c->waiting[tid] = &p;
  c->outgoing.push_back(encode_adu(tid, unit, pdu));
  if (!c->writing) {
    c->writing = true;
    asio::co_spawn(executor_, write_loop(c), asio::detached);
  }
  p.wake.expires_after(timeout_);
  boost::system::error_code ec;
  co_await p.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (auto it = c->waiting.find(tid); it != c->waiting.end() && it->second == &p) c->waiting.erase(it);
  if (p.outcome) co_return std::move(*p.outcome);
  co_return make_error_code(modbus_errc::timeout);  // the connection stays: MBAP keeps it in step
}

asio::awaitable<void> tcp_pipelined_transport::write_loop(connection_ptr c) {
  while (c->socket.is_open() && !c->outgoing.empty()) {
    auto adu = std::move(c->outgoing.front());
    c->outgoing.pop_front();
    boost::system::error_code ec;
    co_await asio::async_write(c->socket, asio::buffer(adu), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      c->fail_all(make_error_code(modbus_errc::connection_closed));
      break;
    }
  }
  c->writing = false;
}

asio::awaitable<void> tcp_pipelined_transport::read_loop(connection_ptr c) {
  std::array<std::uint8_t, mbap_header_size> header{};
  std::vector<std::uint8_t> pdu;
  for (;;) {
    boost::system::error_code ec;
    co_await asio::async_read(c->socket, asio::buffer(header), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      c->fail_all(make_error_code(modbus_errc::connection_closed));  // nothing left when closed already
      co_return;
    }
    auto h = decode_mbap(header);
    if (!h) {
      c->fail_all(h.error());  // the stream is out of step: only a new connection resynchronises
      co_return;
    }
    pdu.resize(h->pdu_size());
    co_await asio::async_read(c->socket, asio::buffer(pdu), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      c->fail_all(make_error_code(modbus_errc::connection_closed));
      co_return;
    }
    auto it = c->waiting.find(h->transaction_id);
    if (it == c->waiting.end()) {
      spdlog::debug("modbus late response dropped addr={} transaction={} unit={}", c->endpoint,
                    h->transaction_id, h->unit_id);
      continue;
    }
    auto* p = it->second;
    c->waiting.erase(it);
    if (h->unit_id != p->unit) {
      p->outcome = make_error_code(modbus_errc::transaction_mismatch);
    } else {
      p->outcome = pdu;
    }
    p->wake.cancel();
  }
}

}  // namespace firegate::modbus
