#pragma once
// The MQTT ingest bus: a Paho client on the site broker. Paho's callback thread only queues each
// message in the inbox (bounded, fair between topics) and wakes the loop, unless the loop is to look
// again by itself (drain_hold, after a turn that took messages); the loop decodes them in batches,
// so a flood never holds the loop for long. Per device: a token-bucket rate limit (the excess
// dropped, the latest message kept and taken when the device is within its rate again), duplicates
// and late messages dropped by the profile's counter, last-seen offline detection.
//
// Its state and work: ingest_bus.cpp has the connection, the ticks and the driver the application
// holds; ingest_messages.cpp each message, from the inbox to the device's readings.

#include "domain/backoff.hpp"
#include "inbox.hpp"
#include "mqtt_client/loop_client.hpp"
#include "mqtt_client/paho_support.hpp"
#include "mqtt_driver.hpp"
#include "rate_limiter.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace firegate::mqtt_ingest {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// Why a device is offline: silent past its offline_after_s, or its bus's broker unreachable.
enum class ingest_errc { silent = 1, broker_down = 2 };
std::error_code make_error(ingest_errc e);

/// A flood ends when the device has stayed within its rate this long.
inline constexpr auto flood_quiet = 10s;
/// Messages decoded in one turn of the loop before it lets other work run.
inline constexpr std::size_t batch_size = 256;
/// After a turn that took messages, the loop looks again this much later instead of being woken
/// for each message that comes meanwhile: at thousands of messages a second, one wake-up of the
/// loop a message cost more than the rest of its handling (docs/performance.md, "MQTT sensor
/// ingest"). The first message after a quiet moment is taken at once; one in a burst waits at most
/// this long.
inline constexpr auto drain_hold = std::chrono::milliseconds(5);
/// Unknown device ids remembered for firegatectl (the first ones; the rest are counted).
inline constexpr std::size_t unknown_kept = 32;

struct device_state {
  const ingest_device_settings* settings{nullptr};
  device_counters counters;
  enum class link { unknown, online, offline } link{link::unknown};
  steady::time_point last_seen;  ///< the last live message, or when the bus started
  std::optional<double> last_sequence;
  rate_limiter<inbound> limiter{1, 1, {}};
  bool flooding{false};
  std::uint64_t flood_dropped{0};
  steady::time_point last_drop;
  bool unreadable{false};
  steady::time_point last_problem_log;
  /// Offline with the bus (the site broker unreachable): its bus's fault covers it. Cleared by a
  /// message; once the broker is back its silence counts afresh and is then its own.
  bool offline_with_bus{false};
  bool back_from_bus{false};  ///< went offline with the bus, which is back: still silent, told on its own
};

struct unknown_device {
  std::string profile;
  std::string topic;
  std::uint64_t messages{0};
};

/// The largest packet an MQTT 5 broker may send: a payload at the limit with a long topic and its
/// properties. Larger payloads up to it are refused here as too large; beyond it the broker drops them.
inline constexpr std::size_t max_packet_bytes = max_payload_bytes + 16 * 1024;
/// How long an MQTT 5 broker keeps a persistent session for an absent firegated.
inline constexpr int session_expiry_s = 7 * 24 * 3600;

/// The bus's state and work, shared by what is under way on the loop (the ticks, a reconnect's wait,
/// a drain's next turn), each holding it until it ends: a stop cancels them, and the state goes with
/// the last, as a Modbus bus's does. No handler of Paho's reaches it once it goes (paho::loop_client).
class ingest_link final : public std::enable_shared_from_this<ingest_link> {
 public:
  ingest_link(asio::any_io_executor ex, std::string name, std::shared_ptr<const ingest_bus_settings> s,
              reading_sink& sink);
  void start();
  void stop();
  std::vector<device_counters> counters() const;
  std::vector<std::pair<std::string, std::string>> diagnostics() const;

 private:
  static std::string address_of(const ingest_device_settings& d);
  std::string subscriptions_text() const;
  std::set<std::string> filters() const;

  // --- the connection ---------------------------------------------------------------------------

  void connect();
  /// `session_kept`: the broker still had this client's session (what arrived meanwhile follows).
  void on_connected(bool session_kept);
  void on_connect_failed(const std::string& why);
  void on_connection_lost(const std::string& why);
  void schedule_reconnect();

  // --- messages ---------------------------------------------------------------------------------

  void drain();
  void handle(inbound m);
  void note_unknown(const ingest_profile& p, const std::string& id, const std::string& topic);
  /// A message of a configured device: through its rate limit, then taken.
  void arrive(device_state& d, inbound& m, std::optional<decoded_message> decoded);
  void flood_drop(device_state& d, std::uint64_t n, steady::time_point now);
  void emit_flag(device_state& d, std::string_view point, double value, clock::time_point time);
  /// Decodes (unless done) and reports a message's readings.
  void take(device_state& d, const inbound& m, std::optional<decoded_message> decoded);
  /// A message of a known device that cannot be read at all, or has fields of the wrong type (those
  /// readings already marked bad).
  void unreadable(device_state& d, const inbound& m, const std::vector<std::string>& problems);
  void log_problems(device_state& d, const inbound& m, const std::vector<std::string>& problems);
  void seen(device_state& d);

  // --- once a second ----------------------------------------------------------------------------

  /// Once a second until the stop: silent devices, floods that ended.
  asio::awaitable<void> ticks();
  void on_tick();
  /// The broker answers: a bus fault of it ends (one restored from before a restart too), and the
  /// devices that went offline with it get their offline_after afresh from now.
  void bus_back();
  /// The site broker unreachable when a device's silence ran out: one fault for the bus, and its
  /// devices go offline with it as their silence runs out.
  void bus_down(std::error_code error);
  void go_offline(device_state& d, steady::time_point now);
  /// Messages the inbox refused (its share for a topic full): counted on the device the topic names.
  void attribute_drops(steady::time_point now);

  asio::any_io_executor executor_;
  std::string name_;
  std::shared_ptr<const ingest_bus_settings> settings_;
  reading_sink& sink_;
  asio::steady_timer tick_;
  asio::steady_timer retry_;
  asio::steady_timer hold_;  ///< the next look at the inbox after a turn that took messages
  std::shared_ptr<inbox> inbox_;
  std::vector<device_state> devices_;
  std::map<std::pair<std::string, std::string>, std::size_t> by_id_;  ///< (profile, id) → devices_
  std::vector<const ingest_profile*> profiles_;                       ///< those the devices use
  std::map<std::pair<std::string, std::string>, unknown_device> unknown_;
  std::uint64_t unknown_unlisted_{0};  ///< messages of unknown ids past the first unknown_kept
  steady::time_point last_unlisted_log_{};
  std::uint64_t messages_{0}, unmatched_{0}, unreadable_unattributed_{0}, queue_dropped_{0};
  steady::time_point last_unattributed_log_{};
  steady::time_point started_{};
  bool stopped_{false}, connected_{false}, connecting_{false};
  bool bus_down_{false};   ///< a bus_offline has been told and not yet ended
  bool bus_known_{false};  ///< the broker has been reached since the start
  std::size_t connects_{0};
  /// Subscriptions the broker granted since the last connect: at all of them, one line says so
  /// (from then on a message for this client is queued by a kept session, not lost).
  std::size_t granted_{0};
  backoff backoff_{500ms, 30s};  ///< domain/backoff.hpp
  /// The site broker's connection: Paho's outcomes come back as handlers on the loop, none after the
  /// bus goes. Declared last, so that it goes first.
  std::unique_ptr<paho::loop_client> client_;
};

}  // namespace firegate::mqtt_ingest
