#pragma once
// A TCP proxy on loopback whose connections can die without closing, as a cellular link's do when
// the carrier drops them from its NAT or the far end loses power: no FIN, no RST, bytes simply stop
// arriving. freeze() turns every connection open now into such a black hole (what either side
// sends is read and dropped, both sockets stay open); connections accepted after it are forwarded
// as before, as a new connection over a revived link would be.

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
  /// Connections accepted so far.
  std::size_t accepted() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace firegate::test
