#pragma once
// The platform's commands, from the MQTT uplink's command topic to their replies on cmd/reply
// (docs/uplink.md, "Commands"): checked, carried out once, remembered, answered. The application
// owns one and gives it hooks for what only it can do (the alarm engine, the health, the drivers,
// the uplink, raising events).

#include "app/config_changes.hpp"
#include "config/config.hpp"
#include "rules/alarm_engine.hpp"
#include "store/store_worker.hpp"
#include "uplink/mqtt/commands.hpp"
#include "uplink/mqtt/payloads.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace firegate {

/// Runs on the loop, and lives as long as it runs: made before the loop starts, stopped with it,
/// destroyed after it has returned. A handler of its (a store job's reply, a read's timer) runs
/// only while the loop does, so never after it goes, and none asks whether it still exists.
class platform_commands {
 public:
  struct hooks {
    /// The gateway's health, for a status command (the outbox depths read from the store first).
    std::function<void(std::function<void(gateway_health)>)> with_health;
    /// An alarm command carried out on the alarm engine: ack, self_test, shield, unshield, test_mode.
    std::function<alarm_engine::outcome(const command_body&)> carry_out;
    /// Asks the device's driver to poll it now: "" when asked, else why it cannot be.
    std::function<std::string(const std::string& device)> poll_now;
    /// Publishes a reply on cmd/reply (nothing when there is no uplink).
    std::function<void(const std::string& payload)> reply;
    /// Raises an event a command made.
    std::function<void(event)> raise;
    /// config_apply, config_confirm (app/config_changes.hpp), with the command's id.
    std::function<config_changes::outcome(const command_body&, const std::string& command_id)> configure;
    /// What firegatectl status and devices give (control_api::diagnostics), handed to `done` on
    /// the loop; an error text instead when it cannot be had now.
    std::function<void(std::function<void(nlohmann::json)> done)> diagnostics;
  };

  /// `site`: the configuration in force (the application's, replaced in place by a reload), which
  /// outlives this object, as `io` and `worker` do.
  platform_commands(boost::asio::io_context& io, store_worker& worker, const config::gateway_file& site,
                    hooks h);
  ~platform_commands();
  platform_commands(const platform_commands&) = delete;
  platform_commands& operator=(const platform_commands&) = delete;

  /// The commands carried out lately, read from the store at start (those young enough to be taken
  /// again by command_max_age_s): a replay of one is known at once.
  void remember(std::map<std::string, store::remembered_command, std::less<>> done);
  /// A command (cmd topic): carried out and answered on cmd/reply, unless it is a retained message,
  /// or was carried out before (its first reply is sent again).
  void on_command(const std::string& payload, bool retained = false);
  /// The daemon stops: reads still waiting are given up (their timers end).
  void stop();
  /// A device's readings from one poll: answers the read commands waiting for it.
  void on_readings(std::span<const reading> readings);

 private:
  /// A command not carried out before: checked against the allow-list and its age, then done.
  void run_command(const parsed_command& cmd);
  /// Logs a command's outcome and publishes its reply; one carried out is remembered by its id.
  /// `reached_engine`: the alarm engine took it (and may have refused it).
  /// `after`: run once the reply is handed to the uplink (a configuration change that may remake it).
  void answer(const parsed_command& cmd, const std::string& error, std::span<const event> events,
              std::string_view result, bool reached_engine = false, std::function<void()> after = {});
  /// A reply in parts within [uplink.mqtt] max_message_bytes (logs, diagnostics): read only, so not
  /// remembered.
  void answer_in_parts(const parsed_command& cmd, const reply_content& content);
  /// logs: the recent lines (app/log_ring.hpp) the command asks for.
  void answer_logs(const parsed_command& cmd, const logs_command& q);
  /// A command carried out before: its first reply again, marked "repeated".
  void answer_repeat(const parsed_command& cmd, const std::string& first_reply);
  /// A read command: polls the device now; answered by on_readings() or after read_timeout.
  /// Returns the refusal, or "" when under way.
  std::string start_read(const parsed_command& cmd, const read_command& rd);

  boost::asio::io_context& io_;
  store_worker& store_;
  const config::gateway_file& site_;
  hooks hooks_;
  /// Read commands waiting for their device's next poll.
  struct pending_read {
    parsed_command cmd;
    std::string device, point;
    clock::time_point asked;
    std::shared_ptr<boost::asio::steady_timer> timer;
  };
  std::vector<pending_read> reads_;
  /// Commands carried out lately, by id, and those being carried out now.
  std::map<std::string, store::remembered_command, std::less<>> done_commands_;
  static constexpr std::size_t max_remembered_commands = 10000;
  std::deque<std::string> done_order_;
  std::set<std::string, std::less<>> commands_under_way_;
  static constexpr std::chrono::seconds read_timeout{10};
  /// Parts of replies still to publish, paced (send_parts): an alarm published meanwhile waits
  /// behind one part at most, not a whole diagnostics.
  std::deque<std::string> parts_out_;
  boost::asio::steady_timer parts_timer_{io_};
  bool parts_sending_{false};
  /// The pace: a part of this many bytes a second (256 kbit/s, a poor cellular link).
  static constexpr std::size_t parts_bytes_per_second = 32768;
  /// Publishes the next part waiting, and schedules the one after it.
  void send_parts();
};

}  // namespace firegate
