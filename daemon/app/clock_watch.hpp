#pragma once
// The system clock's health (docs/clock.md): whether the kernel counts it synchronised, as
// timedatectl shows it, and a clock_unsynchronised fault once it has not been for
// [alarms] clock_fault_after_s. Alarm times are evidence: a control room must know when they may be
// wrong.

#include "domain/event.hpp"
#include "domain/rule.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace firegate {

/// One reading of the kernel's clock state.
struct clock_reading {
  /// Whether the clock is synchronised; empty when it could not be read (`error` says why).
  std::optional<bool> synchronised;
  std::int64_t max_error_us{0};  ///< the kernel's bound on the clock's error; -1: not known (timedated)
  std::int64_t est_error_us{0};  ///< its estimate of it
  std::string error;
  /// Where it came from: "adjtimex" (the kernel) or "timedated" (org.freedesktop.timedate1).
  std::string source;
  /// adjtimex was refused by a system call filter (ProtectClock= in a unit): ask timedated.
  bool denied{false};
  /// timedated has not answered yet (the first question is under way): unknown, nothing to report.
  bool pending{false};
};

/// adjtimex(2) with no change asked (read only, allowed without CAP_SYS_TIME): synchronised when
/// the maximum error is under 16 s, the test timedatectl's "System clock synchronized" makes (the
/// time service sets it low at each adjustment; the kernel lets it grow to 16 s without one).
clock_reading read_kernel_clock();

/// One question to systemd-timedated over the system bus (its NTPSynchronized property, which it
/// reads with adjtimex as above): what `timedatectl` shows. Blocks up to 5 s.
clock_reading ask_timedated();

/// Asks timedated at once and then every `every`, on a thread of its own (a bus call blocks; the
/// loop must not), where a system call filter denies adjtimex (docs/clock.md). latest() gives the
/// last answer (unknown until the first). Neither making nor dropping one waits for the bus: the
/// thread is let go, and ends after the call under way.
class timedate_client {
 public:
  explicit timedate_client(std::chrono::seconds every);
  ~timedate_client();
  timedate_client(const timedate_client&) = delete;
  timedate_client& operator=(const timedate_client&) = delete;
  clock_reading latest() const;

 private:
  /// Shared with the thread, which may outlive the client by one call.
  struct shared {
    std::mutex mutex;
    std::condition_variable wake;
    bool stop{false};
    clock_reading latest;
  };
  std::shared_ptr<shared> state_;
};

/// The reader for `source`: for automatic and timedated, a timedate_client asking every `every`,
/// made when first needed.
std::function<clock_reading()> clock_reader(clock_source source, std::chrono::seconds every);

/// Follows the clock on the loop: `check` on each tick says which event is due.
class clock_watch {
 public:
  using reader = std::function<clock_reading()>;
  explicit clock_watch(reader read = read_kernel_clock) : read_(std::move(read)) {}
  /// Reads from `read` from now on (a reload changed [alarms] clock_source); what it knew stays.
  void set_reader(reader read) { read_ = std::move(read); }

  /// What is due after a check.
  enum class due : std::uint8_t {
    nothing,
    fault,     ///< clock_unsynchronised: not synchronised for `fault_after` and no fault open
    recovery,  ///< clock_synchronised: synchronised again while a fault is open
  };
  /// Reads the clock. `fault_after` zero: no fault is raised (an open one still ends once
  /// synchronised). A clock that cannot be read changes nothing.
  due check(std::chrono::steady_clock::time_point now, std::chrono::seconds fault_after);

  /// The last reading.
  const clock_reading& last() const { return last_; }
  /// Synchronised as of the last reading; empty when unknown (not read yet or unreadable).
  std::optional<bool> synchronised() const { return last_.synchronised; }
  /// Synchronised now, read again (the kernel: one system call; timedated: its last answer), for an
  /// event being raised. Changes nothing the checks follow.
  std::optional<bool> synchronised_now() const { return read_().synchronised; }
  /// How long it has been unsynchronised, as of `now`; zero when it is synchronised or unknown.
  std::chrono::seconds unsynchronised_for(std::chrono::steady_clock::time_point now) const;
  /// The wall time the clock was first seen unsynchronised (this run); empty when it is not.
  std::optional<clock::time_point> unsynchronised_since() const { return since_wall_; }

  /// The open clock_unsynchronised event's id ("" when none): set when raised, or at start from
  /// the store's open alarms; taken when its recovery is raised.
  std::string fault_id;

 private:
  reader read_;
  clock_reading last_;
  std::optional<std::chrono::steady_clock::time_point> since_;
  std::optional<clock::time_point> since_wall_;
};

}  // namespace firegate
