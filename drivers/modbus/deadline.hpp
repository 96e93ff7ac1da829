#pragma once
// A per-operation deadline for a transport: when it expires, the transport is closed, which fails
// the pending read or write. The timeout-as-watchdog pattern of Asio's examples.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace firegate::modbus {

/// Thread safety: used on one executor only.
class deadline {
 public:
  deadline(boost::asio::any_io_executor ex, std::function<void()> on_expiry)
      : timer_(std::move(ex)), on_expiry_(std::move(on_expiry)), alive_(std::make_shared<bool>(true)) {}
  ~deadline() { *alive_ = false; }
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;

  /// Starts the deadline of one operation. The generation guards against a timer that expired just as
  /// the operation completed: its handler is already queued and must not close the next operation.
  void arm(std::chrono::steady_clock::duration timeout) {
    expired_ = false;
    const auto generation = armed_ = ++generation_;
    timer_.expires_after(timeout);
    timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_), generation](boost::system::error_code ec) {
      if (ec || !alive.lock() || armed_ != generation) return;
      expired_ = true;
      on_expiry_();
    });
  }
  void disarm() {
    armed_ = 0;
    timer_.cancel();
  }
  /// Whether the last armed operation ran out of time.
  bool expired() const { return expired_; }

 private:
  boost::asio::steady_timer timer_;
  std::function<void()> on_expiry_;
  std::shared_ptr<bool> alive_;
  std::uint64_t generation_{0};
  std::uint64_t armed_{0};  ///< generation of the operation under deadline, 0 when none
  bool expired_{false};
};

}  // namespace firegate::modbus
