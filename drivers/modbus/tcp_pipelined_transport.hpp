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
  /// Closes the connection: the detached loops hold the socket and would keep it open.
  ~tcp_pipelined_transport() override;
  std::string endpoint() const override;
  bool is_open() const override { return socket_->is_open(); }
  boost::asio::awaitable<std::error_code> open() override;
  /// May be called again before an earlier call returns; the bus bounds how many are outstanding.
  boost::asio::awaitable<result<std::vector<std::uint8_t>>> transact(
      std::uint8_t unit, std::span<const std::uint8_t> pdu) override;
  void close() override;
  /// Responses that came after their request had timed out (dropped).
  std::uint64_t late_responses() const { return late_; }

 private:
  struct pending {
    std::uint8_t unit;
    boost::asio::steady_timer wake;
    std::optional<result<std::vector<std::uint8_t>>> outcome;
  };
  using socket_ptr = std::shared_ptr<boost::asio::ip::tcp::socket>;
  // Detached: they may outlive the transport. Each holds the socket (a read composed of several
  // reads goes on with a piece already queued when the transport goes) and touches nothing else of
  // the transport before it checks `alive`, after every wait.
  boost::asio::awaitable<void> read_loop(std::uint64_t generation, std::weak_ptr<bool> alive,
                                         socket_ptr socket);
  boost::asio::awaitable<void> write_loop(std::uint64_t generation, std::weak_ptr<bool> alive,
                                          socket_ptr socket);
  /// Ends every outstanding request with `ec` and closes the connection.
  void fail_all(std::error_code ec);

  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  socket_ptr socket_;
  deadline connect_deadline_;
  std::uint64_t generation_{0};         ///< one per connection; stale readers and writers stand down
  std::uint64_t writer_generation_{0};  ///< the connection whose writer runs, 0 when none
  std::uint16_t transaction_id_{0};
  std::map<std::uint16_t, pending*> pending_;  ///< by transaction id; each lives in its transact frame
  std::deque<std::vector<std::uint8_t>> outgoing_;
  std::uint64_t late_{0};
  std::shared_ptr<bool> alive_{std::make_shared<bool>(true)};
};

}  // namespace firegate::modbus
