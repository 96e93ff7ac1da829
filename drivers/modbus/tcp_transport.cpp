#include "tcp_transport.hpp"

#include "codec/mbap.hpp"
#include "modbus_error.hpp"
#include "rtu_read.hpp"

#include "domain/tcp_self.hpp"

#include <fmt/format.h>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>

namespace firegate::modbus {
namespace asio = boost::asio;
using asio::ip::tcp;

tcp_transport::tcp_transport(asio::any_io_executor ex, std::string host, std::uint16_t port,
                             std::chrono::milliseconds timeout, tcp_framing framing)
    : host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      socket_(ex),
      deadline_(ex, [this] { close(); }),
      framing_(framing) {}

std::string tcp_transport::endpoint() const {
  return fmt::format("{}:{}", host_, port_);
}

void tcp_transport::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  rx_len_ = 0;
}

asio::awaitable<boost::system::error_code> tcp_transport::fill(std::size_t n) {
  boost::system::error_code ec;
  while (rx_len_ < n && !ec) {
    rx_len_ += co_await socket_.async_read_some(asio::buffer(rx_.data() + rx_len_, rx_.size() - rx_len_),
                                                asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return ec;
}

std::error_code tcp_transport::fail(boost::system::error_code ec) {
  deadline_.disarm();
  close();
  if (deadline_.expired()) return modbus_errc::timeout;
  if (ec == asio::error::eof || ec == asio::error::connection_reset) return modbus_errc::connection_closed;
  return ec;
}

std::error_code tcp_transport::fail(std::error_code ec) {
  deadline_.disarm();
  close();
  return ec;
}

asio::awaitable<std::error_code> connect_tcp(tcp::socket& socket, const std::string& host, std::uint16_t port,
                                             std::chrono::milliseconds timeout, deadline& limit) {
  boost::system::error_code ec;
  tcp::resolver resolver(socket.get_executor());
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return ec;
  // Each address in turn, as asio::async_connect tries them, within one timeout; a connection to
  // itself (domain/tcp_self.hpp) is a refusal, and the next address is tried.
  limit.arm(timeout);
  ec = asio::error::not_found;
  boost::system::error_code ignored;
  for (const auto& entry : endpoints) {
    socket.close(ignored);
    co_await socket.async_connect(entry.endpoint(), asio::redirect_error(asio::use_awaitable, ec));
    if (limit.expired()) {  // the deadline closed the socket, perhaps just as it connected
      ec = asio::error::timed_out;
      break;
    }
    if (ec) continue;
    if (!connected_to_itself(socket)) break;
    close_at_once(socket);
    ec = asio::error::connection_refused;
  }
  limit.disarm();
  if (ec) {
    socket.close(ignored);
    if (limit.expired()) co_return make_error_code(modbus_errc::timeout);
    co_return ec;
  }
  socket.set_option(tcp::no_delay(true), ec);  // small requests: no Nagle delay
  co_return std::error_code{};
}

asio::awaitable<std::error_code> tcp_transport::open() {
  co_return co_await connect_tcp(socket_, host_, port_, timeout_, deadline_);
}

asio::awaitable<std::error_code> tcp_transport::broadcast(std::span<const std::uint8_t> pdu,
                                                          std::chrono::milliseconds turnaround) {
  if (framing_ != tcp_framing::rtu) co_return std::make_error_code(std::errc::operation_not_supported);
  const auto adu = encode_rtu_adu(0, pdu);
  boost::system::error_code ec;
  deadline_.arm(timeout_);
  co_await asio::async_write(socket_, asio::buffer(adu), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return fail(ec);
  deadline_.disarm();
  asio::steady_timer wait(socket_.get_executor(), turnaround);
  co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return std::error_code{};
}

asio::awaitable<result<std::vector<std::uint8_t>>> tcp_transport::transact(
    std::uint8_t unit, std::span<const std::uint8_t> pdu) {
  if (framing_ == tcp_framing::rtu) {
    const auto adu = encode_rtu_adu(unit, pdu);
    boost::system::error_code ec;
    deadline_.arm(timeout_);
    co_await asio::async_write(socket_, asio::buffer(adu), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return fail(ec);
    auto response = co_await read_rtu_response(socket_, unit, frame_);
    if (!response) {
      const auto e = response.error();
      if (deadline_.expired()) co_return fail(make_error_code(modbus_errc::timeout));
      // An I/O error while reading: the server closed or reset the connection.
      if (e.category() != modbus_category()) co_return fail(make_error_code(modbus_errc::connection_closed));
      co_return fail(e);
    }
    deadline_.disarm();
    co_return response;
  }
  const auto tid = ++transaction_id_;
  encode_adu(tid, unit, pdu, tx_);
  boost::system::error_code ec;
  deadline_.arm(timeout_);
  co_await asio::async_write(socket_, asio::buffer(tx_), asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) ec = co_await fill(mbap_header_size);
  if (ec) co_return fail(ec);
  auto header = decode_mbap(std::span<const std::uint8_t, mbap_header_size>(rx_.data(), mbap_header_size));
  if (!header) co_return fail(header.error());
  const auto adu_size = mbap_header_size + header->pdu_size();  // at most rx_.size(): decode_mbap checks
  ec = co_await fill(adu_size);
  if (ec) co_return fail(ec);
  std::vector<std::uint8_t> response(rx_.begin() + mbap_header_size, rx_.begin() + adu_size);
  std::copy(rx_.begin() + adu_size, rx_.begin() + rx_len_, rx_.begin());
  rx_len_ -= adu_size;
  deadline_.disarm();
  if (header->transaction_id != tid || header->unit_id != unit) {
    co_return fail(make_error_code(modbus_errc::transaction_mismatch));
  }
  co_return response;
}

}  // namespace firegate::modbus
