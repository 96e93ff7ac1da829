#pragma once
// The local control API (docs/control-api.md): firegatectl's requests, from the socket
// (control/control_server.hpp) to what each one does and answers. The application owns one for the
// daemon's life and gives it what it reads (sources) and what only the application can do (hooks):
// the health, an alarm command on the engine, raising an event, a flush.

#include "app/config_changes.hpp"
#include "config/config.hpp"
#include "control/control_server.hpp"
#include "driver.hpp"
#include "rules/alarm_engine.hpp"
#include "rules/linkage.hpp"
#include "store/store_worker.hpp"
#include "uplink/mqtt/commands.hpp"
#include "uplink/mqtt/payloads.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace firegate {

class gb26875_uplink;

/// Runs on the loop; what needs the store is asked of its thread and answered back on the loop.
class control_api {
 public:
  /// What the application keeps and the requests read, each outliving this object.
  struct sources {
    const alarm_engine& rules;
    /// Which outputs open alarms hold: a raw write to one is refused unless forced, and a forced one
    /// makes the linkage assert it again.
    linkage_outputs& linkage;
    /// One driver per configured bus, in the configuration's order (replaced in place by a reload).
    const std::vector<std::unique_ptr<bus_driver>>& drivers;
    /// Readings taken since the last flush, not yet in the store.
    const std::vector<reading>& unflushed;
  };
  /// The platform link's state, for status.
  struct link_state {
    bool connected{false};
    std::optional<clock::time_point> last_ack;
    std::optional<std::chrono::seconds> ack_wait;
    std::size_t ack_timeouts{0};
  };
  struct hooks {
    /// The gateway's health now, with the outbox depths just read from the store (none: the last
    /// ones read stand).
    std::function<gateway_health(std::optional<std::array<std::size_t, 3>> outbox_lanes)> health;
    /// An alarm command carried out on the alarm engine (ack, shield, unshield, test_mode, self_test).
    std::function<alarm_engine::outcome(const command_body&)> carry_out;
    /// Raises an event a request made (a raw write, a forced output).
    std::function<void(event)> raise;
    std::function<std::string()> new_event_id;
    /// Stores what is batched, so that an export covers up to now.
    std::function<void()> flush;
    std::function<link_state()> uplink;
    /// The GB/T 26875.3 uplink in force (its diagnostics, the duty person's answer to an
    /// inspection); null when none is configured.
    std::function<gb26875_uplink*()> gb26875;
    /// The metrics in Prometheus's text format (app/metrics.hpp), handed to `done` on the loop.
    std::function<void(std::function<void(std::string)> done)> metrics;
    /// config history, config rollback REV (app/config_changes.hpp); `by` the operator.
    std::function<nlohmann::json()> config_history;
    std::function<config_changes::outcome(const std::string& revision, const std::string& by)>
        config_rollback;
  };

  /// `site`: the configuration in force (the application's, replaced in place by a reload), which
  /// outlives this object, as `io`, `worker` and `config_path` do.
  control_api(boost::asio::io_context& io, store_worker& worker, const config::gateway_file& site,
              const std::filesystem::path& config_path, sources src, hooks h);
  ~control_api();
  control_api(const control_api&) = delete;
  control_api& operator=(const control_api&) = delete;

  /// Opens the socket as the site's [control] says, closing the one open before; a failure is logged
  /// and the daemon runs on without it.
  void open();
  /// At the stop: the socket closes, streams and waits end, requests still under way are dropped.
  void stop();
  /// What happens, for the sessions watching (tail, a test alarm waiting for its acknowledgement).
  void on_readings(std::span<const reading> readings);
  void on_event(const event& e);
  /// What firegatectl status and devices give, as one document (the platform's diagnostics
  /// command): {"status": ..., "devices": [...]}, handed to `done` on the loop.
  void diagnostics(std::function<void(nlohmann::json)> done);

 private:
  /// Each of `device`'s readings in `from` that is newer than `latest`'s of its point (or the first
  /// of it) takes its place there.
  static void keep_newest(std::vector<reading>& latest, std::span<const reading> from,
                          const std::string& device);
  using session_ptr = std::shared_ptr<control::session>;
  void on_request(const session_ptr& s, const nlohmann::json& request);
  void status(const session_ptr& s, const nlohmann::json& id);
  /// firegatectl status's answer, the store read first on its thread; `done` on the loop.
  void status_document(std::function<void(nlohmann::json)> done);
  void devices(const session_ptr& s, const nlohmann::json& id, const std::string& device);
  void alarms(const session_ptr& s, const nlohmann::json& id, const nlohmann::json& args);
  /// `ack` with the alarm's whole id or a unique prefix (alarm_lookup.hpp); a refusal says whether
  /// the alarm was acknowledged already, has cleared, or is unknown here.
  void ack(const session_ptr& s, const nlohmann::json& id, nlohmann::json args);
  void alarm_command(const session_ptr& s, const nlohmann::json& id, const std::string& name,
                     nlohmann::json args);
  void answer_inspection(const session_ptr& s, const nlohmann::json& id, const nlohmann::json& args);
  void tail(const session_ptr& s, const nlohmann::json& id, const nlohmann::json& args);
  void export_readings(const session_ptr& s, const nlohmann::json& id, const nlohmann::json& args);
  void export_page(session_ptr s, nlohmann::json id, clock::time_point from, clock::time_point to,
                   std::string device, std::int64_t after, std::uint64_t sent);
  /// read, write: raw registers through the bus's driver; scan: which units answer.
  void registers(const session_ptr& s, const nlohmann::json& id, const std::string& name,
                 const nlohmann::json& args);
  void scan_unit(session_ptr s, nlohmann::json id, std::size_t bus, int unit, int last, nlohmann::json found);
  nlohmann::json device_json(const device_counters& c) const;
  nlohmann::json config_json() const;
  /// An open alarm as the control API shows it: with its device's place and its value's label.
  nlohmann::json open_alarm_json(const open_alarm& a) const;
  /// What a device's value means where its profile names it ("fire" for state 1); "" otherwise.
  std::string label_of(const std::string& device, const std::string& point, double value) const;
  /// The configured device at `unit` on the bus at `bus` (the platform knows devices, not units).
  std::string device_at(std::size_t bus, int unit) const;
  /// Drops the watchers whose client has gone.
  void prune_watchers();

  boost::asio::io_context& io_;
  store_worker& store_;
  const config::gateway_file& site_;
  const std::filesystem::path& config_path_;
  sources src_;
  hooks hooks_;
  std::unique_ptr<control::server> server_;
  bool stopping_{false};
  /// Sessions streaming what happens: a tail (readings and events of `device`, or all), or a
  /// test alarm waiting for the acknowledgement of `alarm_id`.
  struct watcher {
    std::weak_ptr<control::session> session;
    nlohmann::json id;
    std::string device;
    bool readings{false}, events{false};
    std::string alarm_id;
    std::shared_ptr<boost::asio::steady_timer> deadline;
    clock::time_point started;
  };
  std::vector<watcher> watchers_;
};

}  // namespace firegate
