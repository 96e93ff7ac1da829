#pragma once
// How every link of the gateway waits before it tries again (the platform's broker, the GB/T
// 26875.3 centre, a site broker of wireless sensors): the step doubles from `first` up to `cap`,
// and each wait is drawn between half and all of the step, so that boxes that lost the same peer
// at the same moment do not all come back in the same instant. Plain arithmetic, no clock: the
// random source is the owner's (seeded from the system by default; a test scripts its draws).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>

namespace firegate {

class backoff {
 public:
  /// Draws a number in [0, 1].
  using random_source = std::function<double()>;

  backoff(std::chrono::milliseconds first, std::chrono::milliseconds cap, random_source random = {})
      : first_(first), cap_(cap), step_(first), random_(random ? std::move(random) : system_random()) {}

  /// The wait before the next try, between half and all of the step; the step then doubles.
  std::chrono::milliseconds next() {
    const auto half = step_.count() / 2;
    const double draw = std::clamp(random_(), 0.0, 1.0);
    const auto wait = std::chrono::milliseconds(
        half + static_cast<std::int64_t>(draw * static_cast<double>(step_.count() - half)));
    step_ = std::min(step_ * 2, cap_);
    return wait;
  }
  /// The longest the next wait can be (for the log: "retry within").
  std::chrono::milliseconds step() const { return step_; }
  /// A try succeeded: the next failure waits from `first` again.
  void reset() { step_ = first_; }

 private:
  static random_source system_random() {
    return [engine = std::minstd_rand(std::random_device{}())]() mutable {
      return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
    };
  }

  std::chrono::milliseconds first_, cap_, step_;
  random_source random_;
};

}  // namespace firegate
