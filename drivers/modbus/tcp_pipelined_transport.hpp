#pragma once
// Modbus TCP with several requests outstanding on one connection, for gateways that allow it
// (Messaging on TCP/IP Implementation Guide §3.1.3: the transaction id pairs each response with
// its request, and responses may come in any order). One reader dispatches responses by
// transaction id; one writer sends requests in turn. A timeout fails its own request only: MBAP's
// length field keeps the stream in step, and a late answer to a request given up on is dropped.

#include "deadline.hpp"
#include "transport.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>

namespace firegate::modbus {

class tcp_pipelined_transport final : public transport {
 public:
  tcp_pipelined_transport(boost::asio::any_io_executor ex, std::string host, std::uint16_t port,
                          std::chrono::milliseconds timeout);
  /// Closes the connection: its reader and writer hold it and end on the close.
  ~tcp_pipelined_transport() override;
  std::string endpoint() const override;
  bool is_open() const override { return link_->socket.is_open(); }
  boost::asio::awaitable<std::error_code> open() override;
  /// May be called again before an earlier call returns; the bus bounds how many are outstanding.
  boost::asio::awaitable<result<std::vector<std::uint8_t>>> transact(
      std::uint8_t unit, std::span<const std::uint8_t> pdu) override;
  void close() override;

 private:
  struct pending {
    std::uint8_t unit;
    boost::asio::steady_timer wake;
    std::optional<result<std::vector<std::uint8_t>>> outcome;
  };
  /// One connection and what is under way on it, held by its reader and its writer (detached: they
  /// may outlive the transport, and a read composed of several reads goes on with a piece already
  /// queued when the transport goes). Each touches only its own connection, so a loop of one since
  /// closed reaches nothing of the next.
  struct connection {
    explicit connection(boost::asio::any_io_executor ex, std::string where)
        : socket(std::move(ex)), endpoint(std::move(where)) {}
    boost::asio::ip::tcp::socket socket;
    std::string endpoint;                       ///< for the log
    std::map<std::uint16_t, pending*> waiting;  ///< by transaction id; each lives in its transact frame
    std::deque<std::vector<std::uint8_t>> outgoing;
    bool writing{false};
    /// Ends every outstanding request with `ec` and closes the socket.
    void fail_all(std::error_code ec);
  };
  using connection_ptr = std::shared_ptr<connection>;
  static boost::asio::awaitable<void> read_loop(connection_ptr c);
  static boost::asio::awaitable<void> write_loop(connection_ptr c);

  boost::asio::any_io_executor executor_;
  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  connection_ptr link_;  ///< the connection now (a new one on each open)
  deadline connect_deadline_;
  std::uint16_t transaction_id_{0};
};

}  // namespace firegate::modbus
