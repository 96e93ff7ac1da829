#pragma once
// The pace of the MQTT uplink's telemetry (mqtt.telemetry_rate messages a second, at most a
// second's worth at once, full at the start): a token bucket with no clock of its own, so that its
// arithmetic is unit-tested with given times. Alarms and faults never wait for it.

#include <algorithm>
#include <chrono>

namespace firegate {

class telemetry_pacing {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  /// `rate`: messages a second (> 0).
  explicit telemetry_pacing(double rate) : rate_(rate), tokens_(rate) {}

  /// Whether a message may go at `now`; its token is taken when it may.
  bool take(time_point now) {
    refill(now);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }
  /// How long after `now` a token is there (zero when one is).
  duration wait(time_point now) {
    refill(now);
    if (tokens_ >= 1) return duration::zero();
    return std::chrono::ceil<duration>(std::chrono::duration<double>((1 - tokens_) / rate_));
  }

 private:
  void refill(time_point now) {
    if (now > at_) {
      tokens_ = std::min(rate_, tokens_ + std::chrono::duration<double>(now - at_).count() * rate_);
    }
    at_ = std::max(at_, now);
  }

  double rate_;
  double tokens_;
  time_point at_{};  ///< of the last refill
};

}  // namespace firegate
