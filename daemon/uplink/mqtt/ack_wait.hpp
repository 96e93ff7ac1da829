#pragma once
// How long the MQTT uplink waits for an acknowledgement before it takes the link for dead
// ([uplink.mqtt] ack_timeout_s): that long at first, doubled after each timeout in a row up to
// 5 minutes (or ack_timeout_s when that is longer), so that a link too slow to carry a large message
// within ack_timeout_s (NB-IoT, 2G) still gets it through. An acknowledgement that came within
// ack_timeout_s takes one doubling back; a slower one takes none: a link that is slow, not dead,
// keeps the wait that works for it instead of a reconnect and a resend for every large message.
// Pure logic, no clock of its own.

#include <algorithm>
#include <chrono>

namespace firegate {

class ack_wait {
 public:
  /// The wait now, for an ack_timeout_s of `base`.
  std::chrono::seconds current(std::chrono::seconds base) const {
    const auto limit = std::max(base, std::chrono::seconds(300));
    auto t = base;
    for (unsigned i = 0; i < doublings_ && t < limit; ++i) t *= 2;
    return std::min(t, limit);
  }
  /// Nothing was acknowledged within current(base): the link is dropped and the wait doubled.
  void timed_out(std::chrono::seconds base) {
    if (current(base) < std::max(base, std::chrono::seconds(300))) ++doublings_;
  }
  /// An acknowledgement, `took` after the wait it ended began.
  void acknowledged(std::chrono::steady_clock::duration took, std::chrono::seconds base) {
    if (doublings_ > 0 && took <= base) --doublings_;
  }
  unsigned doublings() const { return doublings_; }

 private:
  unsigned doublings_{0};
};

}  // namespace firegate
