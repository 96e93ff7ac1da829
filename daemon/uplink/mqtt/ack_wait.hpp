#pragma once
// How long the MQTT uplink waits for an acknowledgement before it takes the link for dead
// ([uplink.mqtt] ack_timeout_s), and how that wait follows a slow link. Pure logic: every call is
// given the time, so tests drive it with their own clock.
//
// - The wait starts at ack_timeout_s. Each timeout doubles it, up to 5 minutes (or ack_timeout_s
//   when that is longer): a link too slow to carry a large message within ack_timeout_s (NB-IoT,
//   2G) gets it through after a reconnect or two instead of a reconnect and a resend every time.
// - Each message is timed from its own publish to its own acknowledgement. One that needed longer
//   than the wait one step down (half the wait, below the cap) shows the link still needs this
//   wait: the calm spell starts again. A quick acknowledgement of a small message says nothing
//   about a large one and takes nothing back by itself.
// - A calm spell of three times the wait (no timeout, no acknowledgement that needed longer than
//   the wait one step down, nothing in flight for longer than that) takes one doubling back. A
//   quiet site counts as calm, and so does time without a connection: with ack_timeout_s = 10 a
//   wait at the 5-minute cap comes back to 10 s in half an hour, even when nothing is sent.
// - A message keeps the wait it was sent under: the deadline for what is in flight never shrinks
//   because the wait eased after it went (deadline()).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace firegate {

class ack_wait {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  /// The wait now, for an ack_timeout_s of `base`, with any calm spell up to `now` taken back.
  std::chrono::seconds current(std::chrono::seconds base, time_point now) {
    while (doublings_ > 0 && calm_at(base, now)) {
      --doublings_;
      calm_since_ = calm_since_ + 3 * wait_for(base, doublings_ + 1);
      ++eased_;
    }
    return wait_for(base, doublings_);
  }
  /// Message `id` was published at `now`, under `wait` (current() then).
  void sent(std::int64_t id, std::chrono::seconds wait, time_point now) { sent_.push_back({id, now, wait}); }
  /// How long the deadline waits for what is in flight now: the wait in force, or the longest under
  /// which a message still in flight was sent (a wait that eased meanwhile does not cut it short).
  std::chrono::seconds deadline(std::chrono::seconds base, time_point now) {
    auto wait = current(base, now);
    for (const auto& s : sent_) wait = std::max(wait, s.wait);
    return wait;
  }
  /// Message `id` was acknowledged at `now`: how long it took from its publish (nullopt when it
  /// was not timed here). One that needed more than half the wait starts the calm spell again.
  std::optional<duration> acknowledged(std::int64_t id, std::chrono::seconds base, time_point now) {
    const auto it = std::find_if(sent_.begin(), sent_.end(), [id](const auto& s) { return s.id == id; });
    if (it == sent_.end()) return std::nullopt;
    const auto took = now - it->at;
    sent_.erase(it);
    if (doublings_ > 0 && took > wait_for(base, doublings_ - 1)) calm_since_ = now;
    return took;
  }
  /// Message `id` is no longer in flight without an acknowledgement (a failed delivery, queued again).
  void forget(std::int64_t id) {
    std::erase_if(sent_, [id](const auto& s) { return s.id == id; });
  }
  /// The connection went: nothing is in flight any more.
  void forget_all() { sent_.clear(); }
  /// Nothing was acknowledged within current(): the link is dropped, the wait doubled.
  void timed_out(std::chrono::seconds base, time_point now) {
    if (wait_for(base, doublings_) < cap(base)) ++doublings_;
    calm_since_ = now;
    sent_.clear();
  }
  unsigned doublings() const { return doublings_; }
  /// Doublings taken back by calm spells so far (each is logged by the uplink).
  std::size_t eased() const { return eased_; }
  std::size_t in_flight() const { return sent_.size(); }

 private:
  struct sent_at {
    std::int64_t id;
    time_point at;
    std::chrono::seconds wait;  ///< the wait in force when it was sent
  };
  static std::chrono::seconds cap(std::chrono::seconds base) {
    return std::max(base, std::chrono::seconds(300));
  }
  static std::chrono::seconds wait_for(std::chrono::seconds base, unsigned doublings) {
    auto t = base;
    for (unsigned i = 0; i < doublings && t < cap(base); ++i) t *= 2;
    return std::min(t, cap(base));
  }
  /// A calm spell of three times the wait has passed by `now`, and nothing now in flight has been
  /// waiting longer than the wait one step down.
  bool calm_at(std::chrono::seconds base, time_point now) const {
    if (now - calm_since_ < 3 * wait_for(base, doublings_)) return false;
    const auto lower = wait_for(base, doublings_ - 1);
    return std::none_of(sent_.begin(), sent_.end(), [&](const auto& s) { return now - s.at > lower; });
  }

  unsigned doublings_{0};
  time_point calm_since_{};
  std::size_t eased_{0};
  /// In flight: each message's publish time. At most max_in_flight entries.
  std::vector<sent_at> sent_;
};

}  // namespace firegate
