#pragma once
// The GB/T 26875.3 uplink (docs/gb26875.md): firegate as a user information transmission device
// (UITD) on one TCP connection to a town's fire remote-monitoring centre, over Asio on the daemon's
// loop. It delivers the store's outbox with its own delivery bit (alarms first, then faults): one
// frame at a time, each waiting for the centre's confirm echoing its serial number; no confirm
// within confirm_timeout_s and it is sent again, `retries` times, then the link counts as failed:
// the item stays queued, the connection is closed and made again (backoff 1 s doubling to 60 s,
// with jitter). A deny is answered by one more send; a frame denied twice is set aside (logged
// with its bytes) so that it cannot block the alarms behind it. An empty send-data frame is the
// heartbeat: every heartbeat_s while idle, every heartbeat_abnormal_s while the link is abnormal.
//
// From the centre: reads (61-68, 81, 84-88) are answered with a response echoing their serial,
// the application giving what it knows (alarms, readings); clock synchronisation (90) is confirmed
// and applied to every time label sent to the centre (firegate does not set the box's clock: NTP
// owns it), then reported as the UITD's time (28); an inspection check (91) is confirmed and waits
// for the duty person, who answers with `firegatectl gb26875 answer` within 10 minutes (sent as
// UITD operation, type 24, bit 5). Frames that fail verification are answered with deny.
//
// Analog values (type 3) are sent from live readings, each point at most every analog_interval_s;
// they are not stored for this uplink (telemetry items are stored as delivered for it).
//
// The outbox is read by its outbox_reader (uplink/outbox_reader.hpp). What the uplink makes itself
// (the answer to an inspection check on the alarm lane, the UITD's time on the fault lane, analog
// values) goes after the outbox's items of its lane: a fire alarm is never behind a reply.
//
// gb26875_uplink.cpp has the connection and the sending; gb26875_downlink.cpp what the centre sends.

#include "config/config.hpp"
#include "domain/backoff.hpp"
#include "domain/histogram.hpp"
#include "gb26875/app_data.hpp"
#include "gb26875/frame.hpp"
#include "gb26875_exchange.hpp"
#include "gb26875_mapping.hpp"
#include "store/store_worker.hpp"
#include "uplink/outbox_reader.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json_fwd.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace firegate {

/// Owned by the application through a shared_ptr: a wait under way (a read, a write, a timer, an
/// answer of the store's) holds the uplink until its handler has run, and a stopped uplink's
/// handlers do nothing. Every member function runs on the loop.
class gb26875_uplink : public std::enable_shared_from_this<gb26875_uplink> {
 public:
  /// Bytes of a frame left incomplete this long with nothing more on the line are dropped: a frame
  /// cut short must not take the next one as its rest. Well under the 10 s a centre waits for an
  /// answer; over a 4G link a frame's segments come within tens of milliseconds of each other.
  static constexpr std::chrono::milliseconds incomplete_frame_silence{2000};
  /// Denies of what fails verification: deny_burst at once, then deny_rate a second; the rest are
  /// counted (denies_suppressed), so a flood of garbage does not draw a flood of frames.
  static constexpr double deny_rate = 2.0;
  static constexpr double deny_burst = 10.0;

  /// A read from the centre: `reply` takes the application data to respond with, or nullopt to
  /// deny (a type firegate has nothing for). May reply later (after a store read), on the loop.
  using query_handler = std::function<void(const gb26875::app_data& request,
                                           std::function<void(std::optional<gb26875::app_data>)> reply)>;

  /// `uplink` is this uplink's delivery bit in the store; `random` draws the reconnect waits
  /// (domain/backoff.hpp).
  gb26875_uplink(boost::asio::any_io_executor executor, const config::gb26875_uplink_config& cfg,
                 store_worker& worker, unsigned uplink, gb26875_mapper mapper,
                 backoff::random_source random = {});
  ~gb26875_uplink();
  gb26875_uplink(const gb26875_uplink&) = delete;
  gb26875_uplink& operator=(const gb26875_uplink&) = delete;

  /// A clock synchronisation refused as too large a step: what the centre asked, for a fault event
  /// (raised once for a run of refusals).
  using clock_refused_handler = std::function<void(std::string detail, double step_s)>;

  /// Call before start().
  void on_query(query_handler handler) { query_ = std::move(handler); }
  void on_clock_refused(clock_refused_handler handler) { clock_refused_ = std::move(handler); }

  void start();
  void stop();
  /// New items are in the outbox.
  void notify();
  /// An event just committed (or held in memory with a negative id when the store failed).
  /// `follows`: its event names an earlier one; held after a restart until that one cannot still be
  /// unread in the store (outbox_order.hpp).
  void offer(outbox_item item, bool follows = false);
  /// Live readings: their analog values go up, each point at most every analog_interval_s.
  void on_readings(std::span<const reading> readings);
  /// The duty person's answer to the centre's inspection check; "" when sent, else why not.
  std::string answer_inspection(unsigned operator_number);

  bool connected() const { return connected_; }
  /// The centre's clock minus ours, as its last synchronisation said (0 before one).
  std::chrono::system_clock::duration clock_offset() const { return clock_offset_; }
  /// The centre's clock minus the box's, as its last synchronisation measured it (taken or refused),
  /// and when: the box's offset to the platform (docs/clock.md). Empty before one.
  struct clock_measure {
    std::chrono::system_clock::duration offset;
    clock::time_point at;
  };
  const std::optional<clock_measure>& centre_clock() const { return centre_clock_; }
  std::size_t connects() const { return connects_; }
  /// First send to the centre's confirm of each frame; an alarm's reading to its confirm (metrics).
  const latency_histogram& ack_latency() const { return ack_latency_; }
  const latency_histogram& alarm_latency() const { return alarm_latency_; }
  /// What the devices are to the centre (for the application's answers to reads).
  const gb26875_mapper& mapper() const { return mapper_; }
  /// For firegatectl status (docs/control-api.md): the link, its counters, a waiting inspection.
  nlohmann::json diagnostics() const;

 private:
  using upload = gb26875_upload;
  /// One connection to the centre and what is under way on it. A read, a write, a silence's timer
  /// and an answer of the store's hold the connection they belong to: once it is closed, their
  /// completions do nothing, and nothing of the next connection is theirs.
  struct connection {
    explicit connection(boost::asio::any_io_executor ex) : socket(std::move(ex)) {}
    /// Shuts down and closes the socket; what was waiting to be written is dropped.
    void close();
    boost::asio::ip::tcp::socket socket;
    std::array<std::uint8_t, 4096> read_buffer{};
    std::deque<std::vector<std::uint8_t>> writes;
    bool writing{false};
    bool closed{false};
  };
  struct inspection {
    clock::time_point asked;
    std::chrono::steady_clock::time_point deadline;
  };

  void connect();
  void on_connected();
  void connection_lost(const std::string& why);
  void schedule_reconnect();
  void read();
  /// Drops a frame left incomplete once the line has been quiet for incomplete_frame_silence.
  void watch_silence();
  /// Counts the bytes the reader skipped; logs them at most every 10 s (or now, with `flush`).
  void note_skipped(bool flush);
  void on_frame(const gb26875::frame& f);
  void on_fault(const gb26875::frame_fault& fault);
  void on_request(const gb26875::frame& f);
  void on_control(const gb26875::frame& f);
  void on_confirm(const gb26875::frame& f);
  void on_deny(const gb26875::frame& f);
  /// Sends command `command` with `data`, echoing `serial` (a reply) to the centre.
  void reply(std::uint8_t command, std::uint16_t serial, std::vector<std::uint8_t> data);
  void write(std::vector<std::uint8_t> bytes);
  void write_next();
  void pump();
  void send_current();
  void on_confirm_timeout();
  void done_current();
  void schedule_heartbeat();
  void send_heartbeat();
  /// Application data made here (id 0) into the queue on lane `l`.
  void queue(lane l, upload item);
  /// Items waiting to go and the one waiting for its confirm (heartbeats not counted).
  std::size_t queued() const;
  gb26875::time_label now_label() const;
  gb26875::frame make_frame(std::uint8_t command, std::uint16_t serial, std::vector<std::uint8_t> data) const;
  /// Wraps a completion handler so that it holds this uplink until it has run (a stopped uplink's
  /// handlers do nothing: each looks at stopped_ or connected_).
  template <class F>
  auto held(F f) {
    return [self = shared_from_this(), f = std::move(f)](auto&&... args) mutable {
      f(std::forward<decltype(args)>(args)...);
    };
  }

  boost::asio::any_io_executor executor_;
  config::gb26875_uplink_config cfg_;
  store_worker& worker_;
  unsigned uplink_;
  gb26875_mapper mapper_;
  gb26875::address uitd_{};
  gb26875::address centre_{};
  /// The store's outbox for this uplink: alarms and faults, read and marked (outbox_reader.hpp).
  std::shared_ptr<outbox_reader> outbox_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer reconnect_;
  boost::asio::steady_timer confirm_timer_;
  boost::asio::steady_timer heartbeat_;
  boost::asio::steady_timer inspection_timer_;
  boost::asio::steady_timer silence_;  ///< a frame left incomplete this long is dropped
  gb26875::frame_reader reader_;
  /// The connection now: a new one on each connect.
  std::shared_ptr<connection> link_;
  /// The frame waiting for its confirm, its serial, sends and deadline, and the link's state.
  gb26875_exchange exchange_;
  /// Made here and waiting, by (lane, arrival): the inspection answer, the UITD's time, analog values.
  using queue_key = std::pair<int, std::uint64_t>;
  std::map<queue_key, upload> made_;
  std::uint64_t arrivals_{0};
  std::map<std::pair<std::string, std::string>, std::chrono::steady_clock::time_point> analog_sent_;
  backoff backoff_;  ///< 1 s doubling to 60 s
  std::chrono::system_clock::duration clock_offset_{};
  std::optional<clock_measure> centre_clock_;
  clock_refused_handler clock_refused_;
  bool clock_refused_reported_{false};  ///< since the last synchronisation taken
  std::optional<inspection> inspection_;
  query_handler query_;
  std::optional<clock::time_point> last_confirm_;
  std::chrono::steady_clock::time_point last_fault_log_{};
  std::uint64_t skipped_seen_{0};      ///< of this connection's reader, counted
  std::uint64_t skipped_unlogged_{0};  ///< skipped bytes not yet in a log line
  std::chrono::steady_clock::time_point last_skip_log_{};
  double deny_tokens_{deny_burst};  ///< denies we may send now
  std::chrono::steady_clock::time_point deny_refilled_{};
  bool connected_{false};
  bool connecting_{false};
  bool stopped_{false};
  struct {
    std::uint64_t sent{0}, confirmed{0}, resent{0}, link_faults{0}, denied_by_centre{0}, set_aside{0},
        denied_by_us{0}, requests{0}, not_applicable{0}, inspections{0}, inspections_answered{0},
        inspections_missed{0}, bad_frames{0}, analog_dropped{0}, skipped_bytes{0}, denies_suppressed{0};
    std::uint64_t last_latency_ms{0};
  } counts_;
  std::size_t connects_{0};
  latency_histogram ack_latency_, alarm_latency_;
};

}  // namespace firegate
