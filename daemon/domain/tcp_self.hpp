#pragma once
// A TCP connection to itself, as the gateway's own TCP links (to a Modbus TCP server or gateway, to
// the GB/T 26875.3 centre) may meet one; the MQTT links are Paho's and not checked. With nothing
// listening at a port of this host inside the kernel's ephemeral range
// (`net.ipv4.ip_local_port_range`, 32768-60999 by default), a connection tried there can be given
// that very port as its own and connect to itself (TCP's simultaneous open): it then reads back what
// it sends as the peer's answer, and holds the port its server is to listen on again. Templates on
// the socket type, so that this part needs no networking library.

#include <boost/system/error_code.hpp>

namespace firegate {

/// Whether `socket` (a connected Boost.Asio TCP socket) is connected to itself.
template <class Socket>
bool connected_to_itself(const Socket& socket) {
  boost::system::error_code local_ec;
  boost::system::error_code remote_ec;
  const auto local = socket.local_endpoint(local_ec);
  const auto remote = socket.remote_endpoint(remote_ec);
  return !local_ec && !remote_ec && local == remote;
}

/// Closes `socket` with a reset (`SO_LINGER` of 0), leaving no TIME-WAIT behind: a connection to
/// itself closed the usual way would keep its port, the one its server listens on, for a minute.
template <class Socket>
void close_at_once(Socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(typename Socket::linger(true, 0), ignored);
  socket.close(ignored);
}

}  // namespace firegate
