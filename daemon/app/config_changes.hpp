#pragma once
// Configuration changes from the platform with automatic rollback (docs/remote.md). A change
// (config_apply) is checked as --check-config checks a file, kept on disk with the configuration it
// replaces, applied as a reload, and stands only when the platform confirms it (config_confirm)
// within [remote] confirm_s; otherwise, or when the box restarts first, the one before comes back by
// itself. The site file is never written: a change stands over it while it is the file the change
// was made over, and an edit on site wins.

#include "config/config.hpp"
#include "config/config_history.hpp"
#include "config/config_loader.hpp"
#include "domain/event.hpp"
#include "uplink/mqtt/commands.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace firegate {

/// Runs on the loop. Its disk writes (a few small files, synced) are made there too: a change is
/// rare, and must be on disk before it is applied.
class config_changes {
 public:
  struct hooks {
    /// Applies a checked configuration as a reload does (`how` for the log).
    std::function<void(config::gateway_file next, const std::string& how)> apply;
    /// The uplink the platform's commands come in on is connected.
    std::function<bool()> uplink_connected;
    /// Buses whose transport is down now, each with what failed (their open bus_offline).
    std::function<std::vector<std::pair<std::string, std::string>>()> buses_down;
    /// Buses with at least one device answering now.
    std::function<std::vector<std::string>()> buses_answering;
    std::function<void(event)> raise;
    std::function<std::string()> new_event_id;
  };
  /// What a command or request did: `error` empty when done; `result` a JSON object for the reply.
  struct outcome {
    std::string error;
    std::vector<event> events;
    nlohmann::json result = nlohmann::json::object();
    /// To run once the reply has been handed to the connection the request came in on: the change
    /// itself, which may remake that connection (the uplink, the control socket).
    std::function<void()> then;
  };

  config_changes(boost::asio::io_context& io, std::filesystem::path site_path, hooks h);
  config_changes(const config_changes&) = delete;
  config_changes& operator=(const config_changes&) = delete;

  /// At start, before anything runs: the configuration in force. `site` is the site file's, as
  /// main loaded it; a change from the platform kept over it stands instead, unless the site file
  /// was changed since. A change not yet confirmed when the box stopped is rolled back here. Its
  /// events wait in start_events() for the store.
  config::gateway_file at_start(config::gateway_file site);
  std::vector<event> start_events();
  /// A reload (SIGHUP): the site file when it was changed on site or no change from the platform
  /// stands over it, else the platform's, each read again with its profiles.
  config::load_result load_for_reload();
  /// The reload applied what load_for_reload() gave.
  void reloaded(const config::gateway_file& in_force);

  outcome apply(const config_apply_command& c, const std::string& command_id,
                const config::gateway_file& running);
  outcome confirm(const config_confirm_command& c);
  /// firegatectl config rollback: a kept revision (a unique prefix) or "site" (the site file) is put
  /// back at once, as confirmed; a change waiting for its confirmation is given up.
  outcome restore(const std::string& revision, const std::string& by, const config::gateway_file& running);
  /// firegatectl config history: the changes, newest first, the kept revisions and what waits.
  nlohmann::json history() const;
  /// The change waiting for its confirmation, with its deadline (the status).
  const std::optional<config::pending_change>& pending() const { return state_.pending; }
  /// "platform" while a change from the platform stands over the site file, else "site file".
  std::string source() const { return state_.active.empty() ? "site file" : "platform"; }
  /// The daemon stops: the deadline's timer ends (a change still waiting is rolled back at the next
  /// start).
  void stop();

 private:
  /// The deadline passed without a confirmation: the configuration before comes back.
  void on_deadline();
  /// A configuration with the text it was loaded from.
  struct kept_config {
    config::gateway_file cfg;
    std::string text;
  };
  /// `revision`'s kept text loaded (the site file's when "", or when it is not kept or no longer
  /// loads: `note` then says why). Nothing when the site file does not load either.
  std::optional<kept_config> load_kept(const std::string& revision, std::string& note) const;
  /// `k` is what runs now (its text is what the next patch applies to).
  void commit(const kept_config& k);
  std::optional<std::string> site_text() const;
  /// What state_.active names for the configuration now in force: "" when it is the site file's
  /// text (as last loaded), else its revision, its text kept under it.
  std::string standing_name();
  event make_event(event_kind kind, const std::string& detail, const std::string& by) const;
  static void record(config::history_state& state, std::string action, std::string revision,
                     std::string previous, std::string by, std::string reason, std::string diff);
  /// Saves state_; a failure is logged (what was done stands in memory until a restart).
  void save_or_log();

  boost::asio::io_context& io_;
  std::filesystem::path site_path_;
  hooks hooks_;
  std::optional<config::config_history> history_;
  config::history_state state_;
  /// The text and revision of the configuration in force, and what it was made of.
  std::string running_text_, running_revision_;
  /// SHA-256 of the site file's text as last loaded (at start, or by a reload of the site file): a
  /// change is made over it, and an edit on site not yet loaded does not count.
  std::string site_hash_;
  /// While a change waits: what ran before it, as it ran, which its rollback puts back; the buses
  /// it adds or changes; the buses already down before it.
  std::optional<kept_config> previous_;
  std::vector<std::string> changed_buses_, down_before_;
  /// What load_for_reload() read, in force once reloaded() is called.
  std::optional<std::string> reload_text_;
  bool reload_is_site_{false};
  bool stopped_{false};
  /// A change answered and not yet put in force (its reply is on its way): not confirmable yet.
  bool awaiting_apply_{false};
  /// Counts the changes put in force or given up: a deferred apply of one given up does nothing.
  std::uint64_t generation_{0};
  std::string gateway_id_;
  std::chrono::seconds confirm_{120};
  boost::asio::steady_timer deadline_;
  std::vector<event> start_events_;
  /// In at_start, made with the application: no event ids yet.
  bool starting_{true};
};

}  // namespace firegate
