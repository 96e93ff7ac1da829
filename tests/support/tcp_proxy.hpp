#pragma once
// A TCP proxy on loopback whose connections can die without closing, as a cellular link's do when
// the carrier drops them from its NAT or the far end loses power: no FIN, no RST, bytes simply stop
// arriving. freeze() turns every connection open now into such a black hole (what either side
// sends is read and dropped, both sockets stay open); connections accepted after it are forwarded
// as before, as a new connection over a revived link would be. throttle() makes the link slow
// instead of dead: what the client sends crosses at a given rate, as over NB-IoT or 2G, so a large
// message takes seconds to reach the server and a small one a fraction of that.

#include <cstddef>
#include <cstdint>
#include <memory>

namespace firegate::test {

class freezing_proxy {
 public:
  /// Listens on a free loopback port and forwards each connection to `target_port` on loopback.
  explicit freezing_proxy(std::uint16_t target_port);
  ~freezing_proxy();
  freezing_proxy(const freezing_proxy&) = delete;
  freezing_proxy& operator=(const freezing_proxy&) = delete;
  std::uint16_t port() const;
  /// Every connection open now carries nothing more, either way, and is never closed.
  void freeze();
  /// From now on, what any client sends reaches the server at `bytes_per_second` at most, in
  /// chunks of up to 64 bytes (0: as fast as loopback).
  void throttle(std::size_t bytes_per_second);
  /// Connections accepted so far.
  std::size_t accepted() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace firegate::test
