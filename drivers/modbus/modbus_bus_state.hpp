#pragma once
// A Modbus bus's state and work (drivers/modbus/modbus_bus.hpp is its interface): the devices' polls
// and the workers that run them, in modbus_bus.cpp; writes, checked against the profile and read
// back, in modbus_bus_writes.cpp; what a failure or an answer means for a device and for the bus
// (online, offline, pending, the bus's own fault), in modbus_bus_health.cpp.

#include "link_quality.hpp"
#include "modbus_bus.hpp"
#include "modbus_error.hpp"
#include "poll_schedule.hpp"
#include "technician.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace firegate::modbus::detail {
namespace asio = boost::asio;
using asio::awaitable;
using steady = std::chrono::steady_clock;

/// State of one device on the bus, owned by the bus coroutine.
struct device_state {
  const modbus_device_settings* settings{nullptr};
  enum class link { unknown, online, offline } link{link::unknown};
  /// When it is asked next, online or offline (poll_schedule.hpp).
  device_schedule schedule;
  steady::time_point pending_since{};  ///< when it began waiting as told::pending
  bool busy{false};                    ///< a worker is polling it (with max_in_flight > 1)
  /// How its going offline was told to the sink: on its own; with its bus (the bus's fault covers
  /// it); not yet, because no other unit has answered since it went offline (the bus may be down:
  /// told once that is known); or its bus came back and it has not answered yet.
  enum class told { nothing, pending, own, with_bus, bus_back } offline_told{told::nothing};
  /// The sink was told it is offline and not yet that it is online again (pending covers both: a
  /// device new to its silence, and one told offline with its bus whose bus came back).
  bool sink_offline{false};
  std::error_code last_failure;
  /// The device refused a read across its reserved registers: read it without gaps from now on.
  bool gapless{false};
  link_quality quality;
  device_counters counters;
  bool offline() const { return link == link::offline; }
  steady::time_point due() const { return schedule.due(offline()); }
};

struct pending_write {
  write_command command;
  write_handler done;
};

/// A technician's request (firegatectl read, write, scan), sent as it is between polls.
struct pending_raw {
  std::uint8_t unit;
  std::vector<std::uint8_t> pdu;
  pdu_handler done;
};

/// What an exception says, whatever its type.
inline std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

/// Whether a fault that repeats is logged now: the first time, then once a minute (`last` keeps
/// when).
inline bool due_to_log(steady::time_point& last, steady::time_point now) {
  if (last != steady::time_point{} && now - last < std::chrono::seconds(60)) return false;
  last = now;
  return true;
}

/// Shared with its coroutine so that stop() can return while the coroutine unwinds.
/// Thread safety: every member is used on the daemon's io_context only.
class bus final : public std::enable_shared_from_this<bus> {
  /// One per request the bus may have outstanding (max_in_flight): its own pause and request buffer.
  struct worker {
    explicit worker(asio::any_io_executor ex) : pause(std::move(ex)) {}
    asio::steady_timer pause;
    std::vector<std::uint8_t> request;
    /// A poll's readings and a block's registers: kept, so that a poll allocates neither.
    std::vector<reading> readings;
    std::vector<std::uint16_t> registers;
    /// The work of this pass is done with: a poll's schedule has moved on and its outcome is being
    /// counted, or a write's or request's caller is being answered. A fault after that is not the
    /// device's, and the line is in step.
    bool settled{false};
    bool full{false};              ///< the poll under way reads every point
    steady::time_point started{};  ///< when the poll under way began
  };

 public:
  bus(asio::any_io_executor ex, std::string name, std::shared_ptr<const modbus_bus_settings> settings,
      std::unique_ptr<transport> t, reading_sink& sink);
  void start();
  void stop();
  void raw(std::uint8_t unit, std::vector<std::uint8_t> pdu, pdu_handler done);
  std::shared_ptr<const profile_library> library() const { return settings_->library; }
  std::vector<device_counters> counters() const;
  void write(write_command command, write_handler done);
  bool poll_now(const std::string& device);

 private:
  void fail_raws(std::error_code ec);
  void wake_all();
  /// Starts a worker's loop; should an exception ever escape it, logged and started again.
  void spawn(worker& w);
  /// One worker: with max_in_flight = 1 (the default) the only one, so the bus carries one request
  /// at a time. With more, each takes the next device due (poll_schedule.hpp) no other
  /// worker is polling.
  awaitable<void> run(worker& w);
  /// The run loop's catch: answers what the worker had under way, counts a poll as failed, closes
  /// the line when a request may have stopped halfway; returns how long the worker waits before its
  /// next pass (zero unless the fault is nobody's in particular).
  steady::duration last_resort(std::string_view error, std::optional<pending_write> writing,
                               std::optional<pending_raw> asking, device_state* polling, const worker& w);
  /// Opens the transport; on failure every device on the bus has failed (the server, the gateway in
  /// front of the devices or the serial port is unreachable). Every open goes through here, the run
  /// loop's and a write's, so the bus's view of its line is the transport's.
  /// On failure it sets the line's back-off (next_open_), which every worker keeps.
  awaitable<std::error_code> reopen();
  /// How long to wait before the next try to open: `backoff`, but a try lands when the line has been
  /// failing for pending_limit(), where its devices are told offline whatever offline_after says.
  steady::duration open_wait(std::chrono::milliseconds backoff) const;
  /// A bus that cannot keep its schedule (too many devices for its baud rate, or slow answers) says
  /// so, at most once a minute, with what to change.
  void note_lateness(const device_state& d, steady::time_point now);
  /// One request, timed and counted. The transport resynchronises or closes itself on a failure
  /// (transport.hpp).
  awaitable<result<std::vector<std::uint8_t>>> exchange(device_state& d,
                                                        const std::vector<std::uint8_t>& request);
  void count_response(device_state& d);
  /// Polls `d`: the start and whether it reads every point are the worker's (run() sets them).
  awaitable<void> poll(device_state& d, worker& w);
  /// Checks a block's response (written once, in the codec) and appends its points' readings
  /// (`registers`: room for the block's registers, reused).
  static std::error_code decode_block(const device_state& d, const device_profile& profile,
                                      const read_block& block, std::span<const std::uint8_t> pdu,
                                      clock::time_point now, std::vector<reading>& out,
                                      std::vector<std::uint16_t>& registers);
  static write_outcome invalid(std::string detail);
  /// Checks a value against a [[writes]] entry and builds its request (fc 05 for a coil, 06 for a
  /// register, 16 for a 32-bit value); the registers are left in `regs` for a read-back. An error
  /// text when the value is refused.
  static std::optional<std::string> build_write(const device_profile& profile, const write_def& w,
                                                double value, write_request& request,
                                                std::uint16_t (&regs)[2]);
  static std::string writables(const device_profile& profile);
  /// A write between polls: checked against the profile's [[writes]], sent, its echo checked, and
  /// read back when the profile says so.
  awaitable<write_outcome> do_write(const write_command& c, worker& wk);
  /// A write that failed at `stage`: counted (its error too, unless `error_counted` already), logged,
  /// and its outcome.
  write_outcome write_failed(device_state& d, const write_command& c, const point_def& p, std::error_code ec,
                             std::string_view stage, bool error_counted = false);
  /// Reads a write's target back and compares it with what `request` puts there (`regs`): empty
  /// when equal.
  awaitable<std::error_code> read_back(device_state& d, const point_def& p, const write_request& request,
                                       const std::uint16_t (&regs)[2], worker& wk);
  /// A write to every unit on the line at once (device "*"): every device that has the writable
  /// must have it at the same place, as with a line of one model. Nobody answers a broadcast, so
  /// nothing confirms it; the line is quiet for the turnaround delay afterwards.
  awaitable<write_outcome> do_broadcast(const write_command& c, worker& wk);
  const std::string& where(const device_state& d) const { return d.counters.address; }
  static void count_error(device_state& d, std::error_code ec);
  /// One poll's outcome for the device's link quality: what to tell when it turns poor or good
  /// again. The caller tells it once its own counts and changes are made (a sink that throws must
  /// not leave a poll's outcome half counted).
  std::optional<device_quality> note_quality(device_state& d, std::error_code ec);
  void record_failure(device_state& d, std::error_code ec);
  /// How long a device waits as pending at most before it is told offline on its own: long enough
  /// for every device on a shared line to fail `offline_after` times in turn (each failure costs a
  /// timeout), at least 10 s, and at most 90 s so that a fault is reported within GB 50116's 100 s.
  /// Also how long a line may fail to open before its devices are offline whatever offline_after
  /// says (reopen).
  std::chrono::milliseconds pending_limit() const;
  void hold_back(device_state& d);
  /// A device offline on its own: its own device_offline.
  void tell_offline(device_state& d, std::error_code ec);
  /// Every device offline, some of them with nothing on the bus answering since: the bus is down.
  /// One bus_offline for the cause, and the devices waiting to be told go offline with it.
  void check_bus_down(std::error_code ec);
  void record_success(device_state& d, steady::time_point started);
  awaitable<void> pause(worker& w, steady::duration d) { co_await pause_until(w, steady::now() + d); }
  /// Waits while another worker opens the transport. Unlike pause(), it waits even with writes or a
  /// technician's requests queued: returning at once would spin the loop's one thread, and the open
  /// under way could never complete.
  awaitable<void> wait_opening(worker& w);
  /// The back-off after a failed open, or after a fault the last resort charged to nothing. It
  /// waits even with writes queued (a sounder's write for a line that cannot be opened): pause()
  /// would return at once, and the loop's one thread would spin on open() with nothing else served.
  /// A new write or stop() still wakes it.
  awaitable<void> back_off(worker& w, steady::duration d);
  awaitable<void> pause_until(worker& w, steady::time_point t);

  std::string name_;
  std::shared_ptr<const modbus_bus_settings> settings_;
  std::unique_ptr<transport> transport_;
  reading_sink& sink_;
  asio::any_io_executor executor_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::size_t last_{0};  ///< the device polled last, for turns among equally due ones
  /// When a device was last read in full (a bus behind schedule spaces them out), and when a worker
  /// last waited with nothing due (a bus that did within an alarm interval is not behind).
  steady::time_point last_full_{}, last_idle_{};
  bool opening_{false};  ///< a worker is opening the transport; the others wait
  /// The line's back-off after failed opens, shared by every worker: the next step, and the time
  /// before which no worker tries to open (that time cleared by a new write, a technician's request
  /// or a poll asked for now, which try the line at once).
  std::chrono::milliseconds open_backoff_{250};
  /// Its longest step. Short: a try costs nobody else on the line (nothing can be read on it
  /// meanwhile), and a gateway or adapter back after a long outage with a detector in fire is read
  /// within this of its return.
  static constexpr std::chrono::milliseconds open_retry_max{2000};
  steady::time_point next_open_{};
  std::vector<device_state> devices_;
  std::vector<pending_write> writes_;  ///< rare and few: a vector costs nothing while empty
  std::vector<pending_raw> raws_;
  std::uint64_t late_polls_{0};
  steady::time_point last_late_warning_{};
  /// The run loop's last resort (an exception out of its work): how many, the last, when last
  /// logged, and the wait before the line is tried again, doubling while they repeat.
  std::uint64_t loop_errors_{0};
  steady::time_point last_loop_error_{};
  steady::time_point last_loop_error_log_{};
  std::chrono::milliseconds loop_error_backoff_{250};
  std::uint64_t restarts_{0};              ///< workers started again (spawn)
  steady::time_point last_restart_log_{};  ///< when that was last logged
  /// Requests on the transport not yet answered, of every worker (polls, writes, technicians'):
  /// the last resort does not close the line under them.
  std::size_t requests_out_{0};
  bool link_up_{false};                      ///< opened at least once since the last open failure
  bool open_failed_{false};                  ///< the last open of the transport failed
  steady::time_point open_failing_since_{};  ///< the first of the failed opens in a row
  bool bus_down_{false};                     ///< a bus_offline has been told and not yet ended
  bool bus_known_{false};                    ///< something on the bus has answered since the start
  steady::time_point bus_back_at_{};         ///< when a bus fault last ended (bus_online)
  bool open_failure_logged_{false};          ///< one warning per outage, not one per retry
  bool stopped_{false};
};

}  // namespace firegate::modbus::detail
