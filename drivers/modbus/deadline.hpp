#pragma once
// A per-operation deadline for a transport: when it expires, the transport is closed, which fails
// the pending read or write. The timeout-as-watchdog pattern of Asio's examples.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace firegate::modbus {

/// Thread safety: used on one executor only.
class deadline {
 public:
  deadline(boost::asio::any_io_executor ex, std::function<void()> on_expiry)
      : timer_(std::move(ex)), state_(std::make_shared<state>()) {
    state_->on_expiry = std::move(on_expiry);
  }
  /// A handler already queued finds nothing armed: it reaches nothing of what goes with this.
  ~deadline() {
    state_->armed = 0;
    state_->on_expiry = nullptr;
  }
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;

  /// Starts the deadline of one operation. Lazily, as a watchdog: the timer is not set and cancelled
  /// for each operation (a poll a second per device, each a timer-queue insert and a cancelled
  /// completion), but runs while one is pending and, when it fires, checks the operation then
  /// armed: expired, or waited for again until its own deadline. A handler that finds nothing armed
  /// ends the watch, and the next arm() starts one. The operation's number keeps a handler queued
  /// just as one operation completed from closing the next: it finds the next one's deadline ahead.
  void arm(std::chrono::steady_clock::duration timeout) {
    state_->expired = false;
    state_->armed = ++operations_;  // never 0
    state_->due = std::chrono::steady_clock::now() + timeout;
    // A shorter timeout than the pending wait's (a connect's, say) moves the wait earlier.
    if (!state_->watching || state_->due < timer_.expiry()) watch();
  }
  void disarm() { state_->armed = 0; }
  /// Whether the last armed operation ran out of time.
  bool expired() const { return state_->expired; }

 private:
  /// What the timer's handler reads, held by it.
  struct state {
    std::function<void()> on_expiry;
    std::uint64_t armed{0};                     ///< the operation under deadline, 0 when none
    std::chrono::steady_clock::time_point due;  ///< the armed operation's deadline
    bool watching{false};                       ///< a timer wait is pending
    std::uint64_t waits{0};                     ///< the latest wait's number
    bool expired{false};
  };
  void watch() {
    state_->watching = true;
    const auto wait = ++state_->waits;
    timer_.expires_at(state_->due);  // cancels a pending wait, whose handler then finds a later one
    // `this` is reached only while something is armed, which the destructor ends.
    timer_.async_wait([this, s = state_, wait](boost::system::error_code ec) {
      if (wait != s->waits) return;  // replaced by a wait for an earlier deadline
      s->watching = false;
      if (ec || s->armed == 0) return;  // destroyed, or nothing under deadline now
      if (std::chrono::steady_clock::now() < s->due) {
        watch();  // an operation armed since this wait began: wait until its own deadline
        return;
      }
      s->expired = true;
      s->on_expiry();
    });
  }
  boost::asio::steady_timer timer_;
  std::shared_ptr<state> state_;
  std::uint64_t operations_{0};
};

}  // namespace firegate::modbus
