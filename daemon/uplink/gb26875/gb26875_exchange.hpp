#pragma once
// The GB/T 26875.3 uplink's sending as a state machine with no clock and no socket (docs/gb26875.md,
// "Sending"): one frame waits for the centre's confirm at a time, under a serial number that runs on
// within a connection and starts at 0 on each; no confirm by its deadline and it is sent again,
// `retries` more times, then the link has failed; a deny draws one more send, a second deny sets the
// frame aside. The link is abnormal from a connection's start, and after a missed confirm, until a
// confirm comes; the heartbeat's interval follows. The uplink gives it the time and carries out what
// it says (write a frame, arm a timer, reconnect); unit tests script the times and the centre.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace firegate {

/// Something to send with command 2: an outbox item (its event mapped when it came to the front) or
/// application data made by the uplink (id 0: nothing to mark in the store).
struct gb26875_upload {
  std::int64_t id{0};
  std::vector<std::uint8_t> data;
  std::string what;  ///< for the log: "fire_alarm", "heartbeat", "analog values", ...
  /// An alarm's reading time (wall clock), for the metrics' reading-to-confirm latency.
  std::optional<std::chrono::system_clock::time_point> alarm_read{};
};

class gb26875_exchange {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  struct settings {
    duration confirm_timeout{std::chrono::seconds(10)};
    unsigned retries{3};  ///< sends after the first before the link counts as failed
    duration heartbeat{std::chrono::seconds(60)};
    duration heartbeat_abnormal{std::chrono::seconds(10)};
  };
  /// The frame waiting for its confirm.
  struct waiting {
    gb26875_upload item;
    bool heartbeat{false};
    std::uint16_t serial{0};
    unsigned sends{0};   ///< on this connection
    unsigned denies{0};  ///< on this connection
    time_point first_sent{};
    time_point deadline{};
  };
  /// What an answer, or its absence, means for the frame waiting.
  enum class step {
    not_waited_for,  ///< no frame waits with that serial, or its deadline is not yet (a stale timer)
    confirmed,       ///< delivered: finish() it
    send_again,      ///< send() it again now
    set_aside,       ///< denied twice: finish() it, so that it does not block what follows
    link_failed,     ///< no confirm after every send: the connection is made again, the frame kept
  };

  explicit gb26875_exchange(settings s) : settings_(s) {}

  /// A connection is up: serials start again at 0; a frame the last connection left unconfirmed waits
  /// first under this connection's serial, its sends and denies counted afresh.
  void connected() {
    next_serial_ = 0;
    abnormal_ = true;
    if (waiting_) {
      waiting_->serial = next_serial_++;
      waiting_->sends = 0;
      waiting_->denies = 0;
    }
  }
  /// The connection is gone: the link is abnormal; what waits stays (drop() what is not worth keeping).
  void lost() { abnormal_ = true; }

  bool busy() const { return waiting_.has_value(); }
  const waiting* current() const { return waiting_ ? &*waiting_ : nullptr; }
  /// A new frame waits (none may be waiting): its serial.
  std::uint16_t begin(gb26875_upload item, bool heartbeat) {
    waiting_ = waiting{std::move(item), heartbeat, next_serial_++, 0, 0, {}, {}};
    return waiting_->serial;
  }
  /// The frame waiting is written now (first or again): its confirm is due by the deadline returned.
  time_point send(time_point now) {
    if (waiting_->sends == 0) waiting_->first_sent = now;
    ++waiting_->sends;
    waiting_->deadline = now + settings_.confirm_timeout;
    return waiting_->deadline;
  }

  step on_confirm(std::uint16_t serial, time_point now) {
    if (!waiting_ || serial != waiting_->serial || waiting_->sends == 0) return step::not_waited_for;
    last_latency_ = std::chrono::duration_cast<std::chrono::milliseconds>(now - waiting_->first_sent);
    abnormal_ = false;
    return step::confirmed;
  }
  step on_deny(std::uint16_t serial) {
    if (!waiting_ || serial != waiting_->serial || waiting_->sends == 0) return step::not_waited_for;
    // Once may be damage on the way: sent again as it was. Twice is the centre refusing it.
    return ++waiting_->denies < 2 ? step::send_again : step::set_aside;
  }
  /// The confirm timer went off at `now`.
  step on_timeout(time_point now) {
    if (!waiting_ || waiting_->sends == 0 || now < waiting_->deadline) return step::not_waited_for;
    abnormal_ = true;
    return waiting_->sends <= settings_.retries ? step::send_again : step::link_failed;
  }
  /// Takes away the frame waiting (confirmed or set aside): what it carried.
  gb26875_upload finish() {
    auto item = std::move(waiting_->item);
    waiting_.reset();
    return item;
  }
  /// Forgets the frame waiting (a heartbeat, live values: not worth a resend on the next connection).
  void drop() { waiting_.reset(); }

  bool link_abnormal() const { return abnormal_; }
  duration heartbeat_interval() const {
    return abnormal_ ? settings_.heartbeat_abnormal : settings_.heartbeat;
  }
  /// From the first send to the confirm, of the last frame confirmed.
  std::chrono::milliseconds last_latency() const { return last_latency_; }

 private:
  settings settings_;
  std::optional<waiting> waiting_;
  std::uint16_t next_serial_{0};
  bool abnormal_{true};
  std::chrono::milliseconds last_latency_{0};
};

}  // namespace firegate
