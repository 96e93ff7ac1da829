#pragma once
// The contract between the daemon and a field-bus driver: a driver runs its bus until stopped and
// reports every outcome, faults included, to a sink. Adding a protocol means adding a folder under
// drivers/ and one line in registry.cpp.

#include "domain/catalogue.hpp"
#include "domain/reading.hpp"

#include "config/config.hpp"
#include "config/config_loader.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace firegate {

/// Where drivers report. Implemented by the application; called on the driver's executor (the
/// daemon's one io_context), never from another thread.
class reading_sink {
 public:
  virtual ~reading_sink() = default;
  /// Readings of one device from one poll, all with the same time.
  virtual void on_readings(std::span<const reading> readings) = 0;
  virtual void on_device_status(const device_status& status) = 0;
  /// A bus went down or came back; its devices' statuses follow with by_bus set.
  virtual void on_bus_status(const bus_status& status) { (void)status; }
  /// An online device's answers became mostly bad, or good again (drivers that can tell).
  virtual void on_device_quality(const device_quality& quality) { (void)quality; }
};

/// How one device's communication is going: what firegatectl shows a technician and the heartbeat
/// summarises. Counts since the daemon started.
struct device_counters {
  std::string device;
  std::string bus;
  std::string address;         ///< where it is reached: "127.0.0.1:1502 unit 3", "/dev/ttyS1 unit 7"
  bool online{false};          ///< false until it first answers
  std::uint64_t polls{0};      ///< poll cycles attempted (alarm-group and full)
  std::uint64_t requests{0};   ///< requests sent, writes and read-backs included
  std::uint64_t responses{0};  ///< normal responses that passed every check
  std::uint64_t timeouts{0};
  std::uint64_t crc_errors{0};
  std::uint64_t exceptions{0};         ///< exception responses (codes 1-11 and unknown ones)
  std::uint64_t malformed{0};          ///< bad framing, byte counts, echoes, transaction ids
  std::uint64_t connection_errors{0};  ///< could not open the bus, or it closed under us
  std::uint64_t writes{0}, write_failures{0};
  // Message drivers (MQTT ingest): what the device sent and what became of it.
  std::uint64_t messages{0};      ///< received from the broker (before any check)
  std::uint64_t duplicates{0};    ///< repeats and late messages (by the profile's counter), dropped
  std::uint64_t rate_limited{0};  ///< over the device's rate limit: dropped, but the latest is kept
  /// Failed polls in a row (a line that cannot be opened counts a failure a try, and raises it to
  /// offline_after once it has failed for the bus's pending limit; opened again, the devices not told
  /// offline start at 0).
  std::uint32_t consecutive_failures{0};
  std::chrono::microseconds last_response_time{0};  ///< request sent to response checked
  std::chrono::microseconds max_response_time{0};
  std::chrono::microseconds total_response_time{0};  ///< over `responses`, for the mean
  std::optional<clock::time_point> last_good;        ///< last successful poll
  std::string last_error;                            ///< text of the last failure
};

/// A write a rule's linkage or a technician asks for: a named writable of the device's profile
/// ("command", "mode", "siren"), with an engineering value (labels are the profile's). Device
/// `broadcast_device` writes to every unit on the bus at once, where the bus can (RTU).
inline constexpr std::string_view broadcast_device = "*";

struct write_command {
  std::string device;
  std::string target;
  double value{0};
  /// Read the target first and write only when it differs: a linkage re-asserting an output after a
  /// restart or on an escalation (someone may have switched it off by hand at the panel).
  bool only_if_differs{false};
};

struct write_outcome {
  std::error_code error;  ///< empty: written (and read back equal when `verified`)
  bool verified{false};   ///< the profile asked for a read-back and it matched
  std::string detail;     ///< for the log and the event: what was done or what to check
  bool unchanged{false};  ///< only_if_differs: it already read back at the value; nothing written
};

using write_handler = std::function<void(const write_outcome&)>;

/// A technician's request for raw registers (firegatectl read, write): sent between the daemon's
/// own polls, so it never collides with them on a shared line.
struct register_request {
  std::uint8_t unit{1};
  std::string table{"holding"};  ///< "holding", "input", "coil" or "discrete"
  std::uint16_t address{0};
  std::uint16_t count{1};             ///< for a read
  std::vector<std::uint16_t> values;  ///< not empty: written (coils: 0 or 1), one value a single write
};

struct register_reply {
  std::error_code error;
  std::string detail;                 ///< what failed and what to check
  std::vector<std::uint16_t> values;  ///< what was read (coils: 0 or 1)
  std::chrono::microseconds time{0};  ///< request sent to answer checked
};

/// What a unit on the bus looks like (firegatectl scan): whether it answers, and which of the
/// shipped profiles its registers fit.
struct unit_identity {
  std::uint8_t unit{0};
  bool answered{false};
  std::vector<std::string> profiles;  ///< profiles whose every read it answered with values they allow
  std::string detail;                 ///< the error when it did not answer, or what it answered
};

/// One bus (a TCP connection, a serial line) and the devices on it. Owned by the application.
/// Every member function is called on the daemon's io_context.
class bus_driver {
 public:
  virtual ~bus_driver() = default;
  /// Starts polling on the executor given at creation. Returns at once.
  virtual void start() = 0;
  /// Cancels all outstanding work; the sink is not called afterwards. Idempotent.
  virtual void stop() = 0;
  /// A snapshot of every device's counters.
  virtual std::vector<device_counters> counters() const = 0;
  /// How the bus itself is doing, as (key, value) for firegatectl status: a broker's connection,
  /// messages from devices the configuration does not name. Empty for a driver with nothing to add.
  virtual std::vector<std::pair<std::string, std::string>> diagnostics() const { return {}; }
  /// Queues a write; `done` is called once, on the io_context, with the outcome (after stop(): with
  /// operation_canceled). A driver that cannot write answers operation_not_supported.
  virtual void write(write_command command, write_handler done) {
    done({std::make_error_code(std::errc::operation_not_supported), false,
          "this bus's driver cannot write to " + command.device});
  }
  /// Polls `device` (every point) as soon as the bus is free, offline or not; its readings or its
  /// failure reach the sink as usual. False when the device is not on this bus or the driver cannot.
  virtual bool poll_now(const std::string& device) {
    (void)device;
    return false;
  }
  /// Reads or writes raw registers for a technician; `done` is called once, on the io_context.
  virtual void transact(register_request request, std::function<void(register_reply)> done) {
    (void)request;
    done({std::make_error_code(std::errc::operation_not_supported),
          "this bus's driver has no registers",
          {},
          {}});
  }
  /// Probes one unit and matches it against the shipped profiles; `done` is called once.
  virtual void identify(std::uint8_t unit, std::function<void(unit_identity)> done) {
    done({unit, false, {}, "this bus's driver cannot scan"});
  }
};

/// A profile's model description (any driver's profile: a name, points with a name, a unit and
/// labels, and annotations), made once when the profile is read and shared by every device of it in
/// the catalogue; the driver adds what is its own (writes, points it adds itself) in `extra`.
template <class Profile>
std::shared_ptr<const model_description> describe_model(
    const Profile& profile, const std::function<void(model_description&)>& extra = {}) {
  auto out = std::make_shared<model_description>();
  out->name = profile.name;
  for (const auto& p : profile.points) out->points.push_back({p.name, p.unit, p.labels, p.report});
  out->annotations = profile.annotations;
  if (extra) extra(*out);
  return out;
}

/// A registered driver: how to parse its configuration and how to create it.
struct driver_entry {
  std::string_view name;  ///< the value of buses[].driver
  config::bus_parser parse;
  std::unique_ptr<bus_driver> (*create)(boost::asio::any_io_executor executor, const config::bus_config& bus,
                                        reading_sink& sink);
};

/// Every driver firegate has (drivers/registry.cpp).
std::span<const driver_entry> registered_drivers();
/// The registry's parsers, for config::load_config_*.
config::bus_parsers driver_parsers();
/// Creates the driver for `bus`; its settings (parsed by the driver) name its devices.
std::unique_ptr<bus_driver> create_driver(boost::asio::any_io_executor executor,
                                          const config::bus_config& bus, reading_sink& sink);

}  // namespace firegate
