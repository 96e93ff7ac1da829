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
    : host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      socket_(std::make_shared<tcp::socket>(ex)),
      connect_deadline_(ex, [this] { close(); }) {}

tcp_pipelined_transport::~tcp_pipelined_transport() {
  boost::system::error_code ignored;
  socket_->close(ignored);
}

std::string tcp_pipelined_transport::endpoint() const {
  return fmt::format("{}:{}", host_, port_);
}

void tcp_pipelined_transport::close() {
  boost::system::error_code ignored;
  socket_->close(ignored);
  ++generation_;
  outgoing_.clear();
  for (auto& [tid, p] : pending_) {
    if (!p->outcome) p->outcome = make_error_code(modbus_errc::connection_closed);
    p->wake.cancel();
  }
  pending_.clear();
}

void tcp_pipelined_transport::fail_all(std::error_code ec) {
  for (auto& [tid, p] : pending_) {
    p->outcome = ec;
    p->wake.cancel();
  }
  pending_.clear();
  close();
}

asio::awaitable<std::error_code> tcp_pipelined_transport::open() {
  auto ec = co_await connect_tcp(*socket_, host_, port_, timeout_, connect_deadline_);
  if (ec) co_return ec;
  const auto generation = ++generation_;
  asio::co_spawn(socket_->get_executor(), read_loop(generation, alive_, socket_), asio::detached);
  co_return std::error_code{};
}

asio::awaitable<result<std::vector<std::uint8_t>>> tcp_pipelined_transport::transact(
    std::uint8_t unit, std::span<const std::uint8_t> pdu) {
  if (!socket_->is_open()) co_return make_error_code(modbus_errc::connection_closed);
  auto tid = ++transaction_id_;
  while (pending_.contains(tid)) tid = ++transaction_id_;
  pending p{unit, asio::steady_timer(socket_->get_executor()), std::nullopt};
  pending_[tid] = &p;
  outgoing_.push_back(encode_adu(tid, unit, pdu));
  if (writer_generation_ != generation_) {
    writer_generation_ = generation_;
    asio::co_spawn(socket_->get_executor(), write_loop(generation_, alive_, socket_), asio::detached);
  }
  p.wake.expires_after(timeout_);
  boost::system::error_code ec;
  co_await p.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (auto it = pending_.find(tid); it != pending_.end() && it->second == &p) pending_.erase(it);
  if (p.outcome) co_return std::move(*p.outcome);
  co_return make_error_code(modbus_errc::timeout);  // the connection stays: MBAP keeps it in step
}

asio::awaitable<void> tcp_pipelined_transport::write_loop(std::uint64_t generation, std::weak_ptr<bool> alive,
                                                          socket_ptr socket) {
  while (generation == generation_ && !outgoing_.empty()) {
    auto adu = std::move(outgoing_.front());
    outgoing_.pop_front();
    boost::system::error_code ec;
    co_await asio::async_write(*socket, asio::buffer(adu), asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired()) co_return;
    if (ec) {
      if (generation == generation_) fail_all(make_error_code(modbus_errc::connection_closed));
      break;
    }
  }
  if (writer_generation_ == generation) writer_generation_ = 0;
}

asio::awaitable<void> tcp_pipelined_transport::read_loop(std::uint64_t generation, std::weak_ptr<bool> alive,
                                                         socket_ptr socket) {
  std::array<std::uint8_t, mbap_header_size> header{};
  std::vector<std::uint8_t> pdu;
  for (;;) {
    boost::system::error_code ec;
    co_await asio::async_read(*socket, asio::buffer(header), asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired() || generation != generation_) co_return;  // gone, or a connection since closed
    if (ec) {
      fail_all(make_error_code(modbus_errc::connection_closed));
      co_return;
    }
    auto h = decode_mbap(header);
    if (!h) {
      fail_all(h.error());  // the stream is out of step: only a new connection resynchronises
      co_return;
    }
    pdu.resize(h->pdu_size());
    co_await asio::async_read(*socket, asio::buffer(pdu), asio::redirect_error(asio::use_awaitable, ec));
    if (alive.expired() || generation != generation_) co_return;
    if (ec) {
      fail_all(make_error_code(modbus_errc::connection_closed));
      co_return;
    }
    auto it = pending_.find(h->transaction_id);
    if (it == pending_.end()) {
      ++late_;
      spdlog::debug("modbus late response dropped addr={} transaction={} unit={}", endpoint(),
                    h->transaction_id, h->unit_id);
      continue;
    }
    auto* p = it->second;
    pending_.erase(it);
    if (h->unit_id != p->unit) {
      p->outcome = make_error_code(modbus_errc::transaction_mismatch);
    } else {
      p->outcome = pdu;
    }
    p->wake.cancel();
  }
}

}  // namespace firegate::modbus
