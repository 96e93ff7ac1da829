#pragma once
// What the application asks of every uplink, what it gives one it makes, and the list of uplinks
// this build knows (docs/architecture.md, "Adding an uplink"). An uplink is a folder under
// daemon/uplink/ with a library of its own and one entry in daemon/uplink/registry.cpp: the
// application makes each configured one in the registry's order, gives it its delivery bit in the
// store, hands it what is committed, and stops it; it knows none of them by name.

#include "config/config.hpp"
#include "domain/event.hpp"
#include "domain/health.hpp"
#include "domain/histogram.hpp"
#include "domain/reading.hpp"
#include "store/store_worker.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace firegate {

/// Why an uplink is stopped.
enum class uplink_stop {
  daemon_stops,  ///< SIGTERM: a goodbye where the protocol has one, a moment for what is in flight
  reloaded,      ///< a reload makes it again with the new configuration
  abandoned,     ///< the daemon's loop ended by an error: no goodbye (this is no clean stop), no wait
};

/// One uplink as the application drives it. Held by shared_ptr: its waits under way may hold it
/// past the application's reference (docs/architecture.md, "One way to wait"). Runs on the loop.
class uplink {
 public:
  virtual ~uplink() = default;
  virtual void start() = 0;
  /// Returns at once: nothing is sent after it but a goodbye and what was in flight.
  virtual void stop(uplink_stop why) = 0;
  /// New items are in the outbox.
  virtual void notify() = 0;
  /// An item just committed (outbox_reader::offer): an event with its record, telemetry with its
  /// readings, or one the store could not take (negative id). `follows`: its event names an
  /// earlier one.
  virtual void offer(outbox_item item, bool follows) = 0;
  /// A poll's readings as they come, before they are stored (an uplink that sends live values).
  virtual void on_readings(std::span<const reading> readings) { (void)readings; }
  virtual bool connected() const = 0;
  /// Connections made since it started.
  virtual std::size_t connects() const = 0;
  /// When its peer last acknowledged a message; nullopt before the first, or when it cannot say.
  virtual std::optional<clock::time_point> last_ack() const { return std::nullopt; }
  /// How long it waits now for an acknowledgement before it takes the link for dead, and how
  /// often that wait ran out; nullopt when it keeps no such wait.
  virtual std::optional<std::chrono::seconds> ack_wait() { return std::nullopt; }
  virtual std::size_t ack_timeouts() const { return 0; }
  /// For the metrics (docs/metrics.md): the time from each message's send to its peer's
  /// acknowledgement, and from a fire or supervisory alarm's reading to its peer's acknowledgement
  /// of it (an alarm sent again after an outage counts its whole wait; test alarms apart). Null
  /// when it keeps none.
  virtual const latency_histogram* ack_latency() const { return nullptr; }
  virtual const latency_histogram* alarm_latency() const { return nullptr; }
  /// Whether the platform's commands come in on this uplink (the platform uplink: firegatectl's
  /// status and test_alarm report its link).
  virtual bool carries_commands() const { return false; }
  /// Sends the reply to a platform's command that came in on this uplink (carries_commands()).
  virtual void reply(const std::string& payload) { (void)payload; }
};

/// What only the application knows or does, for the uplinks it makes. Each runs on the loop.
struct uplink_services {
  /// Raises an event an uplink made (the GB/T 26875.3 centre's clock refused, say).
  std::function<void(event)> raise;
  std::function<std::string()> new_event_id;
  /// The gateway's health, the outbox depths read from the store first.
  std::function<void(std::function<void(gateway_health)>)> with_health;
  /// A command from the platform (payload, retained): carried out and answered through reply().
  std::function<void(const std::string& payload, bool retained)> command;
  std::function<std::vector<open_alarm>()> open_alarms;
  /// Readings not yet flushed to the store.
  std::function<std::span<const reading>()> unflushed;
  /// The database fails, or one in memory stands in for it.
  std::function<bool()> storage_faulty;
  clock::time_point started;  ///< when firegated started
};

/// What an uplink is made with.
struct uplink_context {
  boost::asio::any_io_executor executor;
  /// The configuration in force: the application's, replaced in place by a reload; it outlives
  /// every uplink.
  const config::gateway_file& site;
  store_worker& store;
  unsigned delivery_bit;  ///< this uplink's bit in the store's delivery marks
  const uplink_services& services;
};

/// One uplink this build knows: its table in the site file is [uplink.<name>].
struct uplink_entry {
  std::string_view name;
  /// Whether the site file configures it.
  bool (*configured)(const config::gateway_file& site);
  /// Whether it sends the stored telemetry (an uplink that does not has it marked delivered for it
  /// as it is stored).
  bool telemetry;
  /// Whether a reload from `running` to `next` must make it again.
  bool (*changed)(const config::gateway_file& running, const config::gateway_file& next);
  /// Puts the running configuration's settings of this uplink back into `next` (a reload that adds
  /// or removes an uplink waits for a restart: delivery bits are in the store).
  void (*keep)(config::gateway_file& next, const config::gateway_file& running);
  std::shared_ptr<uplink> (*create)(const uplink_context& context);
};

/// Every uplink this build knows, in the order their delivery bits are given (daemon/uplink/registry.cpp).
std::span<const uplink_entry> registered_uplinks();
/// Those `site` configures, in that order: the one at index i has delivery bit i.
std::vector<const uplink_entry*> configured_uplinks(const config::gateway_file& site);

}  // namespace firegate
