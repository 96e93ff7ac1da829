#pragma once
// The daemon: owns the one io_context and everything that runs on it. Data flows
// driver → rules → store → uplink (docs/architecture.md). Signals are handled on the loop:
// SIGTERM/SIGINT stop by cancelling work, SIGHUP re-reads the configuration.

#include "clock_watch.hpp"
#include "config/config.hpp"
#include "config_changes.hpp"
#include "control/metrics_server.hpp"
#include "control_api.hpp"
#include "domain/report.hpp"
#include "driver.hpp"
#include "metrics.hpp"
#include "platform_commands.hpp"
#include "rules/alarm_engine.hpp"
#include "rules/linkage.hpp"
#include "store/store_worker.hpp"
#include "systemd_notifier.hpp"
#include "uplink/mqtt/commands.hpp"
#include "uplink/mqtt/payloads.hpp"
#include "uplink/uplink.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <boost/asio/steady_timer.hpp>
#include <csignal>

#include <array>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string_view>
#include <vector>

namespace firegate {

/// Thread safety: everything runs on io_; Paho's threads only post into it.
class application final : public reading_sink {
 public:
  /// SIGINT, SIGTERM (stop) and SIGHUP (reload): blocked from the start of main until run() waits
  /// for them, so one sent while the daemon starts is taken, not fatal.
  static sigset_t signals_taken();
  application(std::filesystem::path config_path, config::gateway_file cfg);
  ~application() override;

  /// Opens storage, starts the uplink and the drivers, and runs until stopped. Returns the exit code.
  /// Throws store_error when the database cannot be opened.
  int run();

  void on_readings(std::span<const reading> readings) override;
  void on_device_status(const device_status& status) override;
  void on_bus_status(const bus_status& status) override;
  void on_device_quality(const device_quality& quality) override;

 private:
  /// The platform commands young enough to be taken again (a replay of one is known at once), read
  /// at start before the store has its worker; empty when they cannot be read (logged).
  std::map<std::string, store::remembered_command, std::less<>> recent_commands(store& s) const;
  /// Makes the platform's commands (app/platform_commands.hpp) with the application's hooks.
  void start_commands(std::map<std::string, store::remembered_command, std::less<>> remembered);
  /// The uplinks the site file configures, in the registry's order (uplink/registry.cpp), each
  /// with its delivery bit in the store: the first configured 0, the next 1.
  void start_uplinks();
  /// Makes `entry`'s uplink (not started) with its delivery bit.
  std::shared_ptr<uplink> make_uplink(const uplink_entry& entry, unsigned bit);
  /// The uplink the status line and the health speak of: the first configured (the MQTT
  /// platform's when there is one); null when none runs.
  const uplink* main_uplink() const;
  /// The uplink the platform's commands come in on, answered there and reported by firegatectl's
  /// status and test_alarm; null when none carries them.
  uplink* platform_uplink() const;
  /// An item committed (or held in memory): to every uplink that takes its lane, copied for all
  /// but the last.
  void offer_to_uplinks(outbox_item item, bool follows);
  void start_drivers();
  /// Makes the control API (app/control_api.hpp) and opens firegatectl's socket ([control]).
  void start_control();
  /// Opens the metrics endpoint when [metrics] enables it, closing the one open before; a failure
  /// is logged and the daemon runs on without it.
  void start_metrics();
  /// The metrics' text (app/metrics.hpp), the store read first on its thread; `done` on the loop.
  void scrape_metrics(std::function<void(std::string)> done);
  void stop_drivers();
  void wait_signal();
  void reload();
  /// A configuration checked and loaded (a reload, a change from the platform, a rollback) put in
  /// force: drivers and changed uplinks made again, the alarms reconfigured (`how` for the log).
  void apply_configuration(config::gateway_file next, const std::string& how);
  /// The changes from the platform (app/config_changes.hpp), with the application's hooks.
  std::unique_ptr<config_changes> make_config_changes();
  /// A reload refused: kept in the status and, once until a configuration is applied again,
  /// raised as config_rejected.
  void reload_refused(const config::load_result& loaded);
  /// A configuration applied (at start or by a reload) ends an open config_rejected.
  void configuration_applied(const std::string& how);
  /// Reads the system clock (each tick): logs a change of its state, raises clock_unsynchronised
  /// once it has not been synchronised for [alarms] clock_fault_after_s, and clock_synchronised when
  /// it is again (docs/clock.md).
  void check_clock();
  /// check_clock now and every [alarms] clock_check_s.
  void schedule_clock();
  /// The clock's health for a status report.
  gateway_health::clock_health clock_health() const;
  void shutdown();
  void tick();
  void tick_rules();
  std::vector<alarm_engine::device_rules> device_rules() const;
  std::vector<std::string> bus_names() const;
  void schedule_flush();
  /// Stores the readings batched since the last flush, with their telemetry messages, in one
  /// transaction.
  void flush();
  /// Every minute: removes what is past storage.max_age_days or over storage.max_size_mb.
  void enforce_bounds();
  void raise(event e);
  /// The site's linkage after what is open changed (`cause`: the event that changed it; null for a
  /// reload): outputs newly held are written, outputs no alarm holds any more reset (docs/alarms.md).
  void update_linkages(const event* cause);
  /// Carries out linkage writes through the output devices' drivers, each reported as linkage_done
  /// or linkage_failed (nothing when it already read back at the value).
  void run_linkage_actions(std::vector<linkage_outputs::action> actions);
  bus_driver* driver_of(const std::string& device);
  /// What a device's value means where its profile names it ("fire" for state 1); "" otherwise.
  std::string label_of(const std::string& device, const std::string& point, double value) const;
  /// A write failed: logged, and on the first failure a storage_fault event. `damage`: the file is
  /// damaged and about to be replaced, whose own fault (storage_damaged) says it all.
  void storage_failed(const std::string& error, std::string_view what, bool damage = false);
  /// An event whose write met a damaged file, written again into the file that replaced it.
  void record_again(const event& e, const outbox_item& item);
  /// A write succeeded, and the outbox read when a fault was open: that fault ends with a
  /// storage_recovery event.
  void storage_succeeded();
  /// A damaged database was moved aside (at start or while running) and what it held carried over:
  /// a storage_fault saying what was kept and what was lost, open until the fresh file works.
  void storage_damaged(const moved_aside_database& moved, salvage_report r);
  /// Opens a storage_fault (ended with the others by storage_succeeded).
  void raise_storage_fault(std::string detail, double value);
  /// At start, before the worker: salvages the moved-aside file and queues the events to send again.
  salvage_report salvage_at_start(store& s);
  /// On the store's thread after a job met damage: moves the file aside, salvages, tells the loop.
  void replace_damaged(store& s);
  /// An event of the old file whose delivery is unknown, as a message marked recovered.
  outbox_item resent_item(const event& e) const;
  void report_eviction(const eviction& e);
  std::string new_event_id();
  const config::device_config* find_device(const std::string& name) const;
  std::string status_line() const;
  /// An alarm command (ack, self_test, shield, unshield, test_mode), from the platform or
  /// firegatectl: carried out by the engine; the caller raises the events.
  alarm_engine::outcome carry_out(const command_body& body);
  /// The platform's commands' hook: "" when `device`'s driver was asked to poll it now.
  std::string poll_now(const std::string& device);
  /// The gateway's health now, with the outbox depths just read from the store when given (kept as
  /// the last read), else as of the last read.
  gateway_health health(std::optional<std::array<std::size_t, 3>> outbox_lanes = std::nullopt);
  /// Reads the outbox depths from the store, then calls `then` on the loop with the health.
  void with_health(std::function<void(gateway_health)> then);

  /// One thread runs it (hint 1: no wake-ups meant for other runners); Paho's threads only post.
  boost::asio::io_context io_{1};
  boost::asio::signal_set signals_;
  boost::asio::steady_timer ticker_;
  boost::asio::steady_timer clock_timer_;  ///< every [alarms] clock_check_s
  boost::asio::steady_timer flusher_;
  /// Readings since the last flush (at most storage.flush_interval_ms old, or flush_at of them).
  std::vector<reading> batch_;
  /// The last flushed batch, emptied by the store's thread and given back: the next batch fills
  /// its memory instead of a fresh allocation the kernel must fault in again (at 1,000 devices a
  /// batch is some 500 KB, and glibc returns a freed one to the kernel).
  std::vector<reading> spare_batch_;
  /// What telemetry carries of each poll (report strategies): decided as readings arrive.
  report_filter reports_;
  /// A batch this large is written at once: a few pages of packed polls, and a bounded batch in
  /// memory at a large fleet (docs/storage.md, "Flash").
  static constexpr std::size_t flush_at = 4000;
  /// While the store fails, at most twice this many readings wait in memory; then the oldest go.
  static constexpr std::size_t max_batch = 20000;
  systemd_notifier notifier_;
  std::filesystem::path config_path_;
  /// Before cfg_: it chooses, at start, whether a change from the platform stands over the site file.
  std::unique_ptr<config_changes> changes_;
  config::gateway_file cfg_;
  std::map<std::string, const config::device_config*, std::less<>> devices_;
  std::mt19937_64 random_;
  /// firegatectl's requests; made once the store is, and gone after it (its store jobs post back).
  std::unique_ptr<control_api> control_api_;
  /// What the metrics count of the application's own, and the endpoint ([metrics]).
  gateway_metrics metrics_;
  std::unique_ptr<control::metrics_server> metrics_server_;
  /// Those waiting for the scrape under way (the first of them started it).
  std::vector<std::function<void(std::string)>> scrape_waiting_;
  /// The store on its own thread: the loop never waits on SQLite (docs/storage.md).
  std::unique_ptr<store_worker> store_;
  std::uint64_t next_seq_{1};
  std::size_t outbox_depth_{0};                ///< as of the last status tick
  std::array<std::size_t, 3> outbox_lanes_{};  ///< the same, per lane
  clock::time_point started_{clock::now()};
  std::chrono::steady_clock::time_point last_bounds_check_{};
  bool storage_failing_{false};
  /// The database could not be opened at start: a database in memory stands in for this run.
  bool storage_in_memory_{false};
  /// The open storage_fault events: each ends with its storage_recovery when the store works again.
  std::vector<std::string> storage_fault_ids_;
  alarm_engine rules_;
  /// Which linkage outputs the open alarms hold.
  linkage_outputs linkage_;
  /// Once a second: stale data and debounces that complete between readings.
  boost::asio::steady_timer rules_timer_;
  /// What the uplinks are given of the application's (uplink/uplink.hpp).
  uplink_services uplink_services_;
  struct running_uplink {
    const uplink_entry* entry;
    unsigned bit;
    std::shared_ptr<uplink> link;  ///< shared with its waits under way
  };
  std::vector<running_uplink> uplinks_;
  std::vector<std::unique_ptr<bus_driver>> drivers_;
  /// Devices the drivers said are offline (on their own or with their bus): a set, as a device may be
  /// said offline twice (with its bus, then on its own when it stays silent after the bus is back).
  std::set<std::string, std::less<>> offline_devices_;
  /// The platform's commands (app/platform_commands.hpp).
  std::unique_ptr<platform_commands> commands_;
  std::size_t storage_faults_{0};
  /// Failed store jobs not yet in a log line, and when the last line was (one a minute at most).
  std::size_t storage_failures_unlogged_{0};
  std::chrono::steady_clock::time_point storage_failure_logged_{};
  /// The configuration in force and the last refused reload (status, firegatectl status).
  gateway_health::configuration config_state_;
  std::string config_rejected_id_;  ///< the open config_rejected event
  /// The system clock's state and its open fault.
  clock_watch clock_{clock_reader(cfg_.alarms.clock, cfg_.alarms.clock_check)};
  /// The reader's source and pace, changed by a reload.
  std::pair<clock_source, std::chrono::seconds> clock_reading_{cfg_.alarms.clock, cfg_.alarms.clock_check};
  bool clock_unreadable_logged_{false};
  bool stopping_{false};
};

}  // namespace firegate
