#include "config_changes.hpp"

#include "config/config_patch.hpp"
#include "domain/time_text.hpp"
#include "driver.hpp"
#include "uplink/uplink.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace firegate {
namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

std::string short_rev(const std::string& r) {
  return r.empty() ? std::string("(site file)") : r.substr(0, 12);
}

/// What a reload keeps as running rather than apply (application::reload): a change from afar that
/// needs them is refused, so that what the platform is told stands is what runs.
std::string needs_restart(const config::gateway_file& now, const config::gateway_file& next) {
  if (next.storage.path != now.storage.path) return "storage.path";
  if (next.remote.dir != now.remote.dir) return "remote.dir";
  for (const auto& e : registered_uplinks()) {
    if (e.configured(next) != e.configured(now))
      return fmt::format("an uplink added or removed ({})", e.name);
  }
  return {};
}

/// What only the site file may change: what the platform may do to the box, how commands are
/// checked, how the box is reached on site, where changes are kept. "" when the change leaves them.
std::string site_only(const config::gateway_file& now, const config::gateway_file& next) {
  if (next.mqtt.commands != now.mqtt.commands) return "[uplink.mqtt] commands";
  if (next.mqtt.command_key != now.mqtt.command_key ||
      next.mqtt.command_key_file != now.mqtt.command_key_file)
    return "[uplink.mqtt] command_key_file";
  if (next.mqtt.command_max_age != now.mqtt.command_max_age) return "[uplink.mqtt] command_max_age_s";
  // Over the broker's limit, a reply in parts would cost the box its connection, and its alarms.
  if (next.mqtt.max_message_bytes != now.mqtt.max_message_bytes) return "[uplink.mqtt] max_message_bytes";
  if (now.mqtt.tls && now.mqtt.tls->verify && (!next.mqtt.tls || !next.mqtt.tls->verify))
    return "[uplink.mqtt.tls] (TLS turned off, or the broker no longer verified)";
  if (next.control != now.control) return "[control]";
  // The box's identity names its topics: the confirmation could not find it.
  if (next.gateway.id != now.gateway.id) return "[gateway] id";
  if (next.site.id != now.site.id) return "[site] id";
  if (next.remote != now.remote) return "[remote]";
  return {};
}

}  // namespace

config_changes::config_changes(asio::io_context& io, std::filesystem::path site_path, hooks h)
    : io_(io), site_path_(std::move(site_path)), hooks_(std::move(h)), deadline_(io) {}

std::optional<std::string> config_changes::site_text() const {
  std::ifstream in(site_path_, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

event config_changes::make_event(event_kind kind, const std::string& detail, const std::string& by) const {
  event e;
  // At start the application is still being made (its event ids too): start_events() gives them.
  if (!starting_) e.id = hooks_.new_event_id();
  e.kind = kind;
  e.device = gateway_id_;
  e.time = clock::now();
  e.detail = detail;
  e.actor = by;
  return e;
}

void config_changes::record(config::history_state& state, std::string action, std::string revision,
                            std::string previous, std::string by, std::string reason, std::string diff) {
  state.changes.push_back(config::config_change{std::move(action), std::move(revision), std::move(previous),
                                                clock::now(), std::move(by), std::move(reason),
                                                std::move(diff)});
  if (state.changes.size() > config::history_state::max_changes) state.changes.erase(state.changes.begin());
}

void config_changes::save_or_log() {
  try {
    history_->save(state_);
  } catch (const config::history_error& e) {
    // The change is made (or undone) in memory; a restart finds the state before it.
    spdlog::error("config history not saved error=\"{}\" action=\"check the disk and {}\"", e.what(),
                  history_->dir().string());
  }
}

config::gateway_file config_changes::at_start(config::gateway_file site) {
  history_.emplace(site.remote.dir);
  gateway_id_ = site.gateway.id;
  confirm_ = site.remote.confirm;
  const auto site_now = site_text().value_or(std::string());
  site_hash_ = config::text_hash(site_now);
  commit({site, site_now});
  std::string note;
  state_ = history_->load(note);
  if (!note.empty()) {
    spdlog::error("config history damaged note=\"{}\"", note);
    // A configuration from the platform that stood is gone with it: the platform must hear so.
    start_events_.push_back(make_event(
        event_kind::config_changed,
        fmt::format("the record of the platform's configuration changes was damaged ({}); any configuration "
                    "from the platform is set aside; the site file (revision {}) is in force",
                    note, short_rev(site.revision)),
        "site"));
  }
  std::optional<kept_config> chosen;
  if (state_.active.empty() && !state_.pending) {
    // Nothing from the platform stands: nothing to write either.
    state_.base = site_hash_;
    starting_ = false;
    return site;
  }
  if (state_.base != site_hash_) {
    // Someone changed the site file on site: theirs stands, whatever the platform sent before.
    const auto given_up = state_.pending ? state_.pending->revision : state_.active;
    spdlog::warn(
        "config site file changed on site file={} platform_revision={} action=\"the site file stands; the "
        "platform's configuration is set aside (kept in {})\"",
        site_path_.string(), short_rev(given_up), history_->dir().string());
    auto e = make_event(state_.pending ? event_kind::config_rolled_back : event_kind::config_changed,
                        fmt::format("the site file {} was changed on site; it stands (revision {}) over the "
                                    "platform's configuration {}{}",
                                    site_path_.string(), short_rev(site.revision), short_rev(given_up),
                                    state_.pending ? ", which was not yet confirmed" : ""),
                        "site");
    if (state_.pending) e.alarm_id = state_.pending->event_id;
    e.configuration = config_change_info{site.revision, given_up, {}};
    start_events_.push_back(std::move(e));
    record(state_, "site_file", site.revision, given_up, "site", "the site file was changed on site", {});
    state_.active.clear();
    state_.confirmed.clear();
    state_.pending.reset();
  } else if (state_.pending) {
    // Stopped (a power cut, a crash, a stop) between a change and its confirmation: the one
    // confirmed before comes back, as the deadline would have brought it.
    const auto p = *state_.pending;
    std::string why;
    chosen = load_kept(p.previous, why);
    const auto back = chosen ? chosen->cfg.revision : site.revision;
    const auto reason = fmt::format(
        "firegated restarted before change {} (applied {} by {}) was confirmed; configuration {} is back{}",
        short_rev(p.revision), iso8601(p.applied), p.by, short_rev(back), why);
    spdlog::warn("config rolled back at start revision={} back_to={} reason=\"{}\"", short_rev(p.revision),
                 short_rev(back), reason);
    auto e = make_event(event_kind::config_rolled_back, reason, p.by);
    e.alarm_id = p.event_id;
    e.configuration = config_change_info{back, p.revision, p.diff};
    start_events_.push_back(std::move(e));
    record(state_, "rolled_back", back, p.revision, p.by, "restarted before it was confirmed", {});
    state_.pending.reset();
  } else {
    std::string why;
    chosen = load_kept(state_.active, why);
    if (!why.empty()) {
      spdlog::error("config platform configuration not loaded revision={} problem=\"{}\"",
                    short_rev(state_.active), why);
      start_events_.push_back(make_event(
          event_kind::config_rolled_back,
          fmt::format("the platform's configuration {} could not be loaded at start{}; the site file stands",
                      short_rev(state_.active), why),
          "site"));
      record(state_, "site_file", site.revision, state_.active, "site", "could not be loaded at start", {});
      chosen.reset();
    }
  }
  if (chosen) commit(*chosen);
  state_.active = standing_name();
  if (state_.active.empty()) state_.confirmed.clear();
  state_.base = site_hash_;
  save_or_log();
  starting_ = false;
  if (!chosen || state_.active.empty()) return site;
  spdlog::info("config in force is the platform's revision={} over_site_file={}",
               short_rev(chosen->cfg.revision), site_path_.string());
  confirm_ = chosen->cfg.remote.confirm;
  return std::move(chosen->cfg);
}

std::vector<event> config_changes::start_events() {
  for (auto& e : start_events_) {
    if (e.id.empty()) e.id = hooks_.new_event_id();
  }
  return std::exchange(start_events_, {});
}

void config_changes::commit(const kept_config& k) {
  running_text_ = k.text;
  running_revision_ = k.cfg.revision;
}

std::optional<config_changes::kept_config> config_changes::load_kept(const std::string& revision,
                                                                     std::string& note) const {
  auto text = revision.empty() ? site_text() : history_->text_of(revision);
  if (!text) {
    note = fmt::format(" ({} is not kept in {}: the site file stands)", short_rev(revision),
                       history_->dir().string());
  } else {
    auto loaded = config::load_config_candidate(*text, fmt::format("revision {}", short_rev(revision)),
                                                site_path_, driver_parsers());
    if (loaded.config) return kept_config{std::move(*loaded.config), std::move(*text)};
    note = fmt::format(" ({} no longer loads: {}; the site file stands)", short_rev(revision),
                       loaded.error_text());
  }
  auto site = config::load_config_file(site_path_, driver_parsers());
  if (!site.config) return std::nullopt;
  return kept_config{std::move(*site.config), site_text().value_or(std::string())};
}

config::load_result config_changes::load_for_reload() {
  reload_text_.reset();
  const auto text = site_text();
  const bool site_changed = !text || config::text_hash(*text) != state_.base;
  std::optional<std::string> kept;
  if (!state_.active.empty() && !site_changed) kept = history_->text_of(state_.active);
  if (kept) {
    // The platform's stands: read again, with its profiles.
    auto loaded = config::load_config_candidate(*kept, fmt::format("revision {}", short_rev(state_.active)),
                                                site_path_, driver_parsers());
    if (loaded.config) {
      reload_text_ = *kept;
      reload_is_site_ = false;
    }
    return loaded;
  }
  auto loaded = config::load_config_file(site_path_, driver_parsers());
  if (!loaded.config || !text) return loaded;  // refused: what runs keeps running
  reload_text_ = *text;
  reload_is_site_ = true;
  if (!state_.active.empty() || state_.pending) {
    // Edited on site while the platform's stood (or its text is gone): the site file wins, as at a
    // start.
    const auto given_up = state_.pending ? state_.pending->revision : state_.active;
    auto e =
        make_event(state_.pending ? event_kind::config_rolled_back : event_kind::config_changed,
                   fmt::format("the site file {} was reloaded; it stands (revision {}) over the "
                               "platform's configuration {}",
                               site_path_.string(), short_rev(loaded.config->revision), short_rev(given_up)),
                   "site");
    if (state_.pending) e.alarm_id = state_.pending->event_id;
    e.configuration = config_change_info{loaded.config->revision, given_up, {}};
    hooks_.raise(std::move(e));
    record(state_, "site_file", loaded.config->revision, given_up, "site",
           site_changed ? "the site file was changed on site" : "the platform's text is no longer kept", {});
    state_.active.clear();
    state_.confirmed.clear();
    state_.pending.reset();
    deadline_.cancel();
    state_.base = config::text_hash(*text);
    save_or_log();
  }
  return loaded;
}

void config_changes::reloaded(const config::gateway_file& in_force) {
  if (reload_text_) {
    running_text_ = std::move(*reload_text_);
    if (reload_is_site_) site_hash_ = config::text_hash(running_text_);
    reload_text_.reset();
    // A reload while a change waits read its profiles again: what the rollback puts back too.
    std::string note;
    if (state_.pending && previous_) {
      if (auto k = load_kept(state_.pending->previous, note); k && note.empty()) previous_ = std::move(*k);
    }
  }
  running_revision_ = in_force.revision;
  gateway_id_ = in_force.gateway.id;
  confirm_ = in_force.remote.confirm;
}

config_changes::outcome config_changes::apply(const config_apply_command& c, const std::string& command_id,
                                              const config::gateway_file& running) {
  outcome out;
  if (awaiting_apply_) {
    out.error = "another change is being put in force; send this one again, with a new id, once it is";
    return out;
  }
  if (state_.pending) {
    out.error = fmt::format(
        "change {} (sent by {} at {}) waits for its confirmation until {}: confirm it (config_confirm) or "
        "let it roll back, then send this one",
        short_rev(state_.pending->revision), state_.pending->by, iso8601(state_.pending->applied),
        iso8601(state_.pending->deadline));
    return out;
  }
  if (!c.if_revision.empty() && !running.revision.starts_with(c.if_revision)) {
    out.error = fmt::format(
        "the configuration in force is {}, not {} (if_revision): it changed since the platform last read it; "
        "read the status again and send the change against it",
        short_rev(running.revision), c.if_revision);
    return out;
  }
  std::string text = c.file;
  if (!c.patch.empty()) {
    auto patched = config::apply_patch(running_text_, c.patch);
    if (!patched.text) {
      out.error = "the patch does not apply: " + patched.error;
      return out;
    }
    text = std::move(*patched.text);
  }
  const auto label = fmt::format("config_apply {}", command_id);
  auto loaded = config::load_config_candidate(text, label, site_path_, driver_parsers());
  if (!loaded.config) {
    const auto lines = loaded.error_lines();
    out.error = fmt::format("the configuration is refused with {} error{}; nothing was changed: {}",
                            loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s",
                            lines.empty() ? std::string() : lines.front());
    out.result["errors"] = lines;
    return out;
  }
  auto& next = *loaded.config;
  const auto diff = config::diff_summary(running_text_, text);
  if (next.revision == running.revision || diff == "no change") {
    out.error = fmt::format("the configuration is the one in force ({}): nothing to change",
                            short_rev(running.revision));
    return out;
  }

  if (auto what = needs_restart(running, next); !what.empty()) {
    out.error = fmt::format(
        "the change needs a restart to take effect ({}); a change from the platform must take effect at "
        "once to be confirmed: make it on site",
        what);
    return out;
  }
  if (auto what = site_only(running, next); !what.empty()) {
    out.error = fmt::format(
        "the change would alter {}, which only the site file sets (what the platform may do and how the "
        "box is reached on site); make that change on site",
        what);
    return out;
  }
  const auto now = clock::now();
  const auto previous = running.revision;
  auto e = make_event(
      event_kind::config_changed,
      fmt::format(
          "configuration {} sent by {} (command {}) is in force in place of {}; it stands once the "
          "platform confirms it (config_confirm) within {} s, else {} comes back by itself; changes: {}",
          short_rev(next.revision), c.by, command_id, short_rev(previous), confirm_.count(),
          short_rev(previous), diff),
      c.by);
  e.value = static_cast<double>(confirm_.count());
  e.configuration = config_change_info{next.revision, previous, diff};
  e.until = now + confirm_;
  // On disk before it runs: a power cut from here on brings back `previous` at the next start.
  auto state = state_;
  state.base = site_hash_;
  if (state.active.empty()) state.confirmed.clear();
  state.active = next.revision;
  state.pending =
      config::pending_change{next.revision, previous, c.by, command_id, e.id, now, *e.until, diff};
  record(state, "applied", next.revision, previous, c.by, {}, diff);
  try {
    history_->keep_text(previous, running_text_, state);
    history_->keep_text(next.revision, text, state);
    history_->save(state);
  } catch (const config::history_error& failed) {
    out.error = fmt::format("the change cannot be kept on disk, so it is not applied: {}", failed.what());
    return out;
  }
  state_ = std::move(state);
  spdlog::warn(
      "config change applied revision={} previous={} by=\"{}\" command={} diff=\"{}\" action=\"rolled back "
      "at {} unless the platform confirms it\"",
      short_rev(next.revision), short_rev(previous), c.by, command_id, diff, iso8601(*e.until));
  out.events.push_back(std::move(e));
  out.result = {{"revision", next.revision},
                {"previous", previous},
                {"confirm_within_s", confirm_.count()},
                {"rolled_back_at", iso8601(now + confirm_)},
                {"diff", diff}};
  // What ran before, as it ran: the rollback puts this back, whatever the disk holds by then.
  previous_ = kept_config{running, running_text_};
  changed_buses_ = config::added_or_changed(running_text_, text, "buses");
  down_before_.clear();
  for (const auto& [bus, why] : hooks_.buses_down()) down_before_.push_back(bus);
  const auto wait = confirm_;
  commit({next, text});
  confirm_ = next.remote.confirm;
  // After the reply has gone out on the connection the command came in on: the change may remake it.
  // Counted from now, whatever holds up the reply (the store's thread): the deadline the reply gives.
  deadline_.expires_after(wait);
  deadline_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_deadline();
  });
  awaiting_apply_ = true;
  out.then = [this, next = std::move(next), generation = ++generation_]() mutable {
    if (generation != generation_) return;  // given up meanwhile (rolled back, put back on site)
    awaiting_apply_ = false;
    if (stopped_ || !state_.pending) return;
    hooks_.apply(std::move(next), "config_apply");
  };
  return out;
}

config_changes::outcome config_changes::confirm(const config_confirm_command& c) {
  outcome out;
  if (c.revision.size() < 8) {
    out.error =
        "argument \"revision\" must be at least 8 hex digits of the revision config_apply's reply gave";
    return out;
  }
  if (!state_.pending) {
    if (running_revision_.starts_with(c.revision)) {
      out.result = {{"revision", running_revision_}, {"already", true}};
      return out;  // confirmed before (a confirmation sent again): it stands
    }
    // What became of that change, when the history still has it.
    std::string fate;
    for (auto it = state_.changes.rbegin(); it != state_.changes.rend(); ++it) {
      if (it->action == "rolled_back" && it->previous.starts_with(c.revision)) {
        fate = fmt::format(" (change {} was rolled back at {}: {})", short_rev(it->previous),
                           iso8601(it->time), it->reason);
        break;
      }
    }
    out.error = fmt::format("no change waits for a confirmation; the configuration in force is {}{}",
                            short_rev(running_revision_), fate);
    return out;
  }
  const auto p = *state_.pending;
  if (awaiting_apply_) {
    out.error =
        "the change is still being put in force (its reply has not gone out yet); confirm it, with a new "
        "id, once it has";
    return out;
  }
  if (!p.revision.starts_with(c.revision)) {
    out.error =
        fmt::format("the change waiting is {}, not {}: confirm the revision config_apply's reply gave",
                    short_rev(p.revision), c.revision);
    return out;
  }
  // A bus the change added or changed that does not work: the change did not take. Confirming it
  // would leave its devices unwatched.
  for (const auto& [bus, why] : hooks_.buses_down()) {
    if (std::find(changed_buses_.begin(), changed_buses_.end(), bus) == changed_buses_.end()) continue;
    out.error = fmt::format(
        "bus {}, which the change adds or changes, is down ({}): the change is not confirmed; send a "
        "corrected one after it rolls back at {}",
        bus, why, iso8601(p.deadline));
    return out;
  }
  // Nor one that has not answered yet: started is not the same as working.
  const auto up = hooks_.buses_answering();
  for (const auto& bus : changed_buses_) {
    if (std::find(up.begin(), up.end(), bus) != up.end()) continue;
    out.error = fmt::format(
        "bus {}, which the change adds or changes, has no device answering yet: the change is not "
        "confirmed; confirm it, with a new id, once its devices answer (before {}), or let it roll back",
        bus, iso8601(p.deadline));
    return out;
  }
  auto state = state_;
  state.pending.reset();
  state.confirmed = p.revision;
  record(state, "confirmed", p.revision, p.previous, c.by, {}, {});
  try {
    history_->save(state);
  } catch (const config::history_error& e) {
    // Not confirmed on disk, so not confirmed: a restart would roll it back. The platform tries again.
    out.error =
        fmt::format("the confirmation cannot be kept on disk: {}; send it again with a new id", e.what());
    return out;
  }
  state_ = std::move(state);
  deadline_.cancel();
  previous_.reset();
  spdlog::info("config change confirmed revision={} by=\"{}\"", short_rev(p.revision), c.by);
  auto e = make_event(event_kind::config_confirmed,
                      fmt::format("configuration {} confirmed by {}: it stands (it replaced {})",
                                  short_rev(p.revision), c.by, short_rev(p.previous)),
                      c.by);
  e.alarm_id = p.event_id;
  e.configuration = config_change_info{p.revision, p.previous, p.diff};
  out.events.push_back(std::move(e));
  out.result = {{"revision", p.revision}};
  return out;
}

void config_changes::on_deadline() {
  if (stopped_ || !state_.pending || !previous_) return;
  const auto p = *state_.pending;
  ++generation_;  // a change not yet put in force (its reply still held up) never will be
  awaiting_apply_ = false;
  std::vector<std::string> why;
  why.push_back(
      fmt::format("{} within {} s",
                  hooks_.uplink_connected() ? "the platform did not confirm it"
                                            : "the uplink to the platform did not come back",
                  std::chrono::duration_cast<std::chrono::seconds>(p.deadline - p.applied).count()));
  // The buses the change broke: those it added or changed, and those that were up before it.
  for (const auto& [bus, detail] : hooks_.buses_down()) {
    const bool changed = std::find(changed_buses_.begin(), changed_buses_.end(), bus) != changed_buses_.end();
    const bool was_down = std::find(down_before_.begin(), down_before_.end(), bus) != down_before_.end();
    if (changed || !was_down) why.push_back(fmt::format("bus {} is down ({})", bus, detail));
  }
  const auto reason = fmt::format("{}", fmt::join(why, "; "));
  auto back = std::move(*previous_);
  previous_.reset();
  commit(back);
  state_.pending.reset();
  state_.active = standing_name();
  if (state_.active.empty()) state_.confirmed.clear();
  record(state_, "rolled_back", back.cfg.revision, p.revision, p.by, reason, {});
  save_or_log();
  spdlog::warn("config change rolled back revision={} back_to={} reason=\"{}\"", short_rev(p.revision),
               short_rev(back.cfg.revision), reason);
  auto e = make_event(event_kind::config_rolled_back,
                      fmt::format("change {} sent by {} was rolled back: {}; configuration {} is back",
                                  short_rev(p.revision), p.by, reason, short_rev(back.cfg.revision)),
                      p.by);
  e.alarm_id = p.event_id;
  e.configuration = config_change_info{back.cfg.revision, p.revision, p.diff};
  hooks_.raise(std::move(e));
  confirm_ = back.cfg.remote.confirm;
  hooks_.apply(std::move(back.cfg), "rolled back");
}

config_changes::outcome config_changes::restore(const std::string& revision, const std::string& by,
                                                const config::gateway_file& running) {
  outcome out;
  if (awaiting_apply_) {
    out.error = "a change from the platform is being put in force; try again in a moment";
    return out;
  }
  std::string target;
  if (revision != "site") {
    std::vector<std::string> matches;
    for (const auto& r : history_->kept()) {
      if (!revision.empty() && r.starts_with(revision)) matches.push_back(r);
    }
    if (matches.size() != 1) {
      std::vector<std::string> names;
      for (const auto& r : history_->kept()) names.push_back(r.substr(0, 12));
      out.error =
          fmt::format("{} revision {} among those kept ({}); give more digits, or \"site\" for the site file",
                      matches.empty() ? "no" : "more than one", revision,
                      names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", ")));
      return out;
    }
    target = matches.front();
  }
  std::string note;
  auto back = load_kept(target, note);
  if (!back || !note.empty()) {
    out.error = fmt::format("revision {} cannot be put back{}", short_rev(target), note);
    return out;
  }
  if (auto what = needs_restart(running, back->cfg); !what.empty()) {
    out.error = fmt::format(
        "revision {} differs in what needs a restart ({}): put it in the site file and "
        "restart firegated",
        short_rev(back->cfg.revision), what);
    return out;
  }
  const auto previous = running.revision;
  const auto was = kept_config{running, running_text_};
  const auto was_site_hash = site_hash_;
  // The site file as it is now is the one loaded from here on.
  if (target.empty()) site_hash_ = config::text_hash(back->text);
  commit(*back);
  auto state = state_;
  state.base = site_hash_;
  state.active = standing_name();
  state.confirmed = state.active;
  state.pending.reset();
  const auto given_up = state_.pending;
  if (given_up) {
    record(state, "rolled_back", previous_ ? previous_->cfg.revision : given_up->previous, given_up->revision,
           given_up->by, fmt::format("put back on site by {}", by), {});
  }
  record(state, "restored", back->cfg.revision, previous, by, {}, {});
  try {
    history_->save(state);
  } catch (const config::history_error& e) {
    site_hash_ = was_site_hash;
    commit(was);
    out.error = fmt::format("the change cannot be kept on disk, so it is not made: {}", e.what());
    return out;
  }
  state_ = std::move(state);
  deadline_.cancel();
  previous_.reset();
  if (given_up) {
    // The change waiting ends here: the platform hears it as a rollback, with who made it.
    auto e = make_event(
        event_kind::config_rolled_back,
        fmt::format("change {} sent by {} was given up: {} put back configuration {} on site",
                    short_rev(given_up->revision), given_up->by, by, short_rev(back->cfg.revision)),
        by);
    e.alarm_id = given_up->event_id;
    e.configuration = config_change_info{back->cfg.revision, given_up->revision, given_up->diff};
    out.events.push_back(std::move(e));
  }
  spdlog::warn("config revision put back on site revision={} previous={} by=\"{}\"",
               short_rev(back->cfg.revision), short_rev(previous), by);
  auto restored = make_event(event_kind::config_changed,
                             fmt::format("configuration {} put back on site by {} in place of {}",
                                         short_rev(back->cfg.revision), by, short_rev(previous)),
                             by);
  restored.configuration =
      config_change_info{back->cfg.revision, previous, config::diff_summary(was.text, back->text)};
  out.events.push_back(std::move(restored));
  out.result = {{"revision", back->cfg.revision}, {"previous", previous}};
  confirm_ = back->cfg.remote.confirm;
  out.then = [this, next = std::move(back->cfg), site = target.empty()]() mutable {
    if (!stopped_) hooks_.apply(std::move(next), site ? "site file put back" : "put back on site");
  };
  return out;
}

json config_changes::history() const {
  auto changes = json::array();
  for (auto it = state_.changes.rbegin(); it != state_.changes.rend(); ++it) {
    json j{{"action", it->action},
           {"revision", it->revision},
           {"previous", it->previous},
           {"time", iso8601(it->time)},
           {"by", it->by}};
    if (!it->reason.empty()) j["reason"] = it->reason;
    if (!it->diff.empty()) j["diff"] = it->diff;
    changes.push_back(std::move(j));
  }
  json out{{"in_force", running_revision_},
           {"source", source()},
           {"confirmed", state_.confirmed},
           {"kept", history_ ? history_->kept() : std::vector<std::string>{}},
           {"dir", history_ ? history_->dir().string() : std::string()},
           {"changes", std::move(changes)},
           {"pending", nullptr}};
  if (state_.pending) {
    out["pending"] = {{"revision", state_.pending->revision},
                      {"by", state_.pending->by},
                      {"applied", iso8601(state_.pending->applied)},
                      {"rolled_back_at", iso8601(state_.pending->deadline)}};
  }
  return out;
}

std::string config_changes::standing_name() {
  if (config::text_hash(running_text_) == site_hash_) return {};
  // Kept under the revision it loads as now (a profile changed since may have changed it).
  if (!history_->text_of(running_revision_)) {
    try {
      history_->keep_text(running_revision_, running_text_, state_);
    } catch (const config::history_error& e) {
      spdlog::error("config history not saved error=\"{}\"", e.what());
      return {};
    }
  }
  return running_revision_;
}

void config_changes::stop() {
  stopped_ = true;
  deadline_.cancel();
}

}  // namespace firegate
