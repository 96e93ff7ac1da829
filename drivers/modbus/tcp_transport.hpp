#pragma once
// Modbus over one TCP connection: MBAP framing (Modbus TCP, Messaging on TCP/IP Implementation
// Guide §3.1), or RTU framing for serial device servers that pass RTU frames through unchanged
// ("RTU over TCP"). Either way a timeout or a bad frame closes the connection to resynchronise.

#include "deadline.hpp"
#include "transport.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <vector>

namespace firegate::modbus {

enum class tcp_framing : std::uint8_t { mbap, rtu };

/// Resolves `host` and connects `socket` within `timeout` (the deadline closes it when it expires).
/// A connection to itself (domain/tcp_self.hpp) is closed at once and counted refused, as a refusal
/// is what it stands for; the host's next address, if it has several, is tried then.
boost::asio::awaitable<std::error_code> connect_tcp(boost::asio::ip::tcp::socket& socket,
                                                    const std::string& host, std::uint16_t port,
                                                    std::chrono::milliseconds timeout, deadline& limit);

class tcp_transport final : public transport {
 public:
  tcp_transport(boost::asio::any_io_executor ex, std::string host, std::uint16_t port,
                std::chrono::milliseconds timeout, tcp_framing framing = tcp_framing::mbap);
  std::string endpoint() const override;
  bool is_open() const override { return socket_.is_open(); }
  boost::asio::awaitable<std::error_code> open() override;
  boost::asio::awaitable<result<std::vector<std::uint8_t>>> transact(
      std::uint8_t unit, std::span<const std::uint8_t> pdu) override;
  /// With RTU framing only: Modbus TCP has no broadcast (unit 0 means "this server").
  boost::asio::awaitable<std::error_code> broadcast(std::span<const std::uint8_t> pdu,
                                                    std::chrono::milliseconds turnaround) override;
  void close() override;

 private:
  std::error_code fail(boost::system::error_code ec);
  std::error_code fail(std::error_code ec);
  /// Receives until rx_ holds at least `n` bytes: as much as has come each time, so that a whole
  /// answer is one receive (and Asio, seeing the socket drained, tries no receive before the next
  /// answer is ready), not one for the header and one for the rest.
  boost::asio::awaitable<boost::system::error_code> fill(std::size_t n);

  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  boost::asio::ip::tcp::socket socket_;
  deadline deadline_;
  std::uint16_t transaction_id_{0};
  /// MBAP framing's read buffer: the largest ADU (a 7-byte header and 253 bytes of PDU). Bytes
  /// after an answer (a stray byte, a late answer) stay here, as they would in the socket, for the
  /// next transaction to find; a closed connection empties it.
  std::array<std::uint8_t, 260> rx_{};
  std::size_t rx_len_{0};
  tcp_framing framing_;
  std::vector<std::uint8_t> frame_;  ///< RTU framing's read buffer
  std::vector<std::uint8_t> tx_;     ///< the request being sent (its memory kept for the next)
};

}  // namespace firegate::modbus
