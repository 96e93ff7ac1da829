// Connecting to a Modbus TCP server that is not there, on the kernel's own loopback: with nothing
// listening at a port in the ephemeral range, a connection tried there again and again is now and
// then given that port as its own and connects to itself (TCP's simultaneous open). Linux gives
// connect() ports of its range's low bound's parity, and since 5.18 moves its starting point by a
// random step after each one, so about one try in 14,000 lands on such a port, at random. A bus
// trying a stopped local server every 2 s (a serial device server's daemon on the box) would then
// take its own requests for answers and, closed the usual way, keep the port its server needs to
// listen on again.

#include "domain/tcp_self.hpp"
#include "modbus/deadline.hpp"
#include "modbus/tcp_transport.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

using namespace firegate;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

/// A loopback port nothing listens at, in the ephemeral range and of the parity Linux gives
/// connect() first (its low bound's): one a connection can be given as its own.
std::uint16_t free_ephemeral_port() {
  unsigned low = 32768;
  unsigned high = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  asio::io_context io;
  std::mt19937 pick(std::random_device{}());
  for (int i = 0; i < 1000; ++i) {
    const auto port = static_cast<std::uint16_t>(low + 2 * (pick() % std::max(1U, (high - low) / 2)));
    tcp::acceptor probe(io);
    boost::system::error_code ec;
    probe.open(tcp::v4(), ec);
    probe.bind({asio::ip::make_address_v4("127.0.0.1"), port}, ec);
    if (!ec) return port;
  }
  FAIL("no free port in the ephemeral range");
  return 0;
}

/// The kernel's IPv4 TCP sockets from `port` to `port` on this host, in any state (TIME-WAIT
/// included): /proc/net/tcp's local and remote addresses are hex "address:port".
int self_connections(std::uint16_t port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // the header
  int found = 0;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot;
    std::string local;
    std::string remote;
    fields >> slot >> local >> remote;
    const auto port_of = [](const std::string& address) {
      return std::stoul(address.substr(address.find(':') + 1), nullptr, 16);
    };
    if (port_of(local) == port && port_of(remote) == port) ++found;
  }
  return found;
}

}  // namespace

TEST_CASE("a socket connected to itself is told from one connected to a server") {
  asio::io_context io;
  const auto port = free_ephemeral_port();
  const tcp::endpoint here{asio::ip::make_address_v4("127.0.0.1"), port};

  // Bound to the port it then connects to: the simultaneous open with itself, made on purpose.
  tcp::socket self(io);
  self.open(tcp::v4());
  self.bind(here);
  self.connect(here);
  CHECK(connected_to_itself(self));
  // Closed at once: its port is free for a server straight away, not after a minute of TIME-WAIT.
  CHECK(self_connections(port) == 1);
  close_at_once(self);
  CHECK(self_connections(port) == 0);
  tcp::acceptor again(io);
  again.open(tcp::v4());
  again.set_option(tcp::acceptor::reuse_address(true));
  boost::system::error_code bound;
  again.bind(here, bound);
  CHECK_FALSE(bound);

  tcp::acceptor server(io, tcp::endpoint{asio::ip::make_address_v4("127.0.0.1"), 0});
  tcp::socket client(io);
  client.connect(server.local_endpoint());
  CHECK_FALSE(connected_to_itself(client));
  tcp::socket closed(io);
  CHECK_FALSE(connected_to_itself(closed));
}

TEST_CASE("tries at a loopback port with nothing listening are all refused, none connected to itself") {
  const auto port = free_ephemeral_port();
  asio::io_context io;
  tcp::socket socket(io);
  modbus::deadline limit(io.get_executor(), [&] { socket.close(); });
  // Without the check 60,000 tries connect to themselves about four times, and none at all in
  // about one run of 70; under the sanitizers the 10 s cut them to fewer.
  const int max_tries = 60000;
  const auto budget = std::chrono::steady_clock::now() + 10s;
  int tries = 0;
  int refused = 0;
  int connected = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (; tries < max_tries && std::chrono::steady_clock::now() < budget; ++tries) {
          const auto ec = co_await modbus::connect_tcp(socket, "127.0.0.1", port, 1s, limit);
          if (!ec) {
            ++connected;
            socket.close();
          } else if (ec == std::errc::connection_refused) {
            ++refused;
          }
        }
      },
      asio::detached);
  io.run();
  INFO("port " << port << ": " << tries << " tries, " << refused << " refused, " << connected
               << " connected");
  CHECK(connected == 0);
  CHECK(refused == tries);
  CHECK(tries > 1000);
  // And no connection to itself is left holding the port, in TIME-WAIT or any other state. (Not
  // asked by binding it: another test's connection may have the port as its own meanwhile.)
  CHECK(self_connections(port) == 0);
}
