#pragma once
// One wireless device's message rate limit: a token bucket of `burst` tokens refilled at `max_rate`
// a second, and the latest message over the rate held back. A sensor or bridge gone wrong can publish
// thousands of messages a second; taking them all would starve every other device on the bus, and
// dropping them all could lose the state the device reports last (a fire after a flood of normals).
// So the excess is dropped except the latest message, which is taken once the device is within its
// rate again; a message taken in the meantime is newer and replaces it. Pure: the time is passed in,
// so the fuzz target (tests/fuzz/fuzz_rate_limiter.cpp) can drive it.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

namespace firegate::mqtt_ingest {

template <typename Message>
class rate_limiter {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// `max_rate` tokens a second (> 0), `burst` tokens at most (>= 1), full at `start`.
  rate_limiter(double max_rate, double burst, time_point start)
      : max_rate_(max_rate), burst_(burst), tokens_(burst), refilled_(start) {}

  /// A message arrives at `now`. Within the rate: a token is spent, a held message (older than this
  /// one) is dropped, and the message is given back to be taken now. Over it: the message is held
  /// (in place of an older held one) and nothing is given back.
  std::optional<Message> arrive(Message m, time_point now) {
    refill(now);
    if (tokens_ < 1.0) {
      if (held_) ++replaced_;
      held_ = std::move(m);
      return std::nullopt;
    }
    tokens_ -= 1.0;
    if (held_) {
      ++replaced_;
      held_.reset();
    }
    return m;
  }

  /// The held message, once the rate allows it at `now` (a token is spent); called on the bus's tick.
  std::optional<Message> release(time_point now) {
    if (!held_) return std::nullopt;
    refill(now);
    if (tokens_ < 1.0) return std::nullopt;
    tokens_ -= 1.0;
    return std::exchange(held_, std::nullopt);
  }

  bool holding() const { return held_.has_value(); }
  const std::optional<Message>& held() const { return held_; }
  double tokens() const { return tokens_; }
  /// Held messages dropped for a newer one, since the start.
  std::uint64_t replaced() const { return replaced_; }

 private:
  void refill(time_point now) {
    // A steady clock does not go back; should `now` be earlier, no tokens are taken away.
    if (now <= refilled_) return;
    const auto dt = std::chrono::duration<double>(now - refilled_).count();
    tokens_ = std::min(burst_, tokens_ + dt * max_rate_);
    refilled_ = now;
  }

  double max_rate_;
  double burst_;
  double tokens_;
  time_point refilled_;
  std::optional<Message> held_;
  std::uint64_t replaced_{0};
};

}  // namespace firegate::mqtt_ingest
