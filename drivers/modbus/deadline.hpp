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

  /// Starts the deadline of one operation. A timer that expired just as the operation completed has
  /// its handler queued already: the operation's number tells it that it must not close the next one.
  void arm(std::chrono::steady_clock::duration timeout) {
    state_->expired = false;
    const auto operation = state_->armed = ++operations_;
    timer_.expires_after(timeout);
    timer_.async_wait([s = state_, operation](boost::system::error_code ec) {
      if (ec || s->armed != operation) return;
      s->expired = true;
      s->on_expiry();
    });
  }
  void disarm() {
    state_->armed = 0;
    timer_.cancel();
  }
  /// Whether the last armed operation ran out of time.
  bool expired() const { return state_->expired; }

 private:
  /// What the timer's handler reads, held by it.
  struct state {
    std::function<void()> on_expiry;
    std::uint64_t armed{0};  ///< the operation under deadline, 0 when none
    bool expired{false};
  };
  boost::asio::steady_timer timer_;
  std::shared_ptr<state> state_;
  std::uint64_t operations_{0};
};

}  // namespace firegate::modbus
