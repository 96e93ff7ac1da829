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

bool allows(const config::gateway_file& f, std::string_view command) {
  return std::find(f.mqtt.commands.begin(), f.mqtt.commands.end(), command) != f.mqtt.commands.end();
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
  e.id = hooks_.new_event_id();
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
  running_revision_ = site.revision;
  running_text_ = site_text().value_or(std::string());
  std::string note;
  state_ = history_->load(note);
  if (!note.empty()) spdlog::error("config history damaged note=\"{}\"", note);
  const auto base = config::text_hash(running_text_);
  if (state_.active.empty() && !state_.pending) {
    state_.base = base;
    return site;
  }
  std::optional<config::gateway_file> chosen;
  if (state_.base != base) {
    // Someone changed the site file on site: theirs stands, whatever the platform sent before.
    const auto given_up = state_.pending ? state_.pending->revision : state_.active;
    spdlog::warn(
        "config site file changed on site file={} platform_revision={} action=\"the site file stands; the "
        "platform's configuration is set aside (kept in {})\"",
        site_path_.string(), short_rev(given_up), history_->dir().string());
    start_events_.push_back(make_event(
        state_.pending ? event_kind::config_rolled_back : event_kind::config_changed,
        fmt::format("the site file {} was changed on site; it stands (revision {}) over the platform's "
                    "configuration {}{}",
                    site_path_.string(), short_rev(site.revision), short_rev(given_up),
                    state_.pending ? ", which was not yet confirmed" : ""),
        "site"));
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
    const auto reason = fmt::format(
        "firegated restarted before change {} (applied {} by {}) was confirmed; configuration {} is back{}",
        short_rev(p.revision), iso8601(p.applied), p.by, short_rev(p.previous), why);
    spdlog::warn("config rolled back at start revision={} previous={} reason=\"{}\"", short_rev(p.revision),
                 short_rev(p.previous), reason);
    auto e = make_event(event_kind::config_rolled_back, reason, p.by);
    e.alarm_id = p.command_id;
    start_events_.push_back(std::move(e));
    record(state_, "rolled_back", p.previous, p.revision, p.by, "restarted before it was confirmed", {});
    state_.pending.reset();
    state_.active = chosen ? standing_name(base) : std::string();
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
      state_.active.clear();
      chosen.reset();
    }
  }
  state_.base = base;
  save_or_log();
  if (!chosen || state_.active.empty()) return site;
  spdlog::info("config in force is the platform's revision={} over_site_file={}", short_rev(chosen->revision),
               site_path_.string());
  confirm_ = chosen->remote.confirm;
  return std::move(*chosen);
}

std::optional<config::gateway_file> config_changes::load_kept(const std::string& revision,
                                                              std::string& note) {
  auto text = revision.empty() ? site_text() : history_->text_of(revision);
  if (!text) {
    note = fmt::format(" ({} is not kept in {}: the site file stands)", short_rev(revision),
                       history_->dir().string());
    text = site_text();
    if (!text) return std::nullopt;
  }
  auto loaded = config::load_config_candidate(*text, fmt::format("revision {}", short_rev(revision)),
                                              site_path_, driver_parsers());
  if (!loaded.config) {
    note = fmt::format(" ({} no longer loads: {})", short_rev(revision), loaded.error_text());
    auto site = config::load_config_file(site_path_, driver_parsers());
    if (!site.config) return std::nullopt;
    running_text_ = site_text().value_or(std::string());
    running_revision_ = site.config->revision;
    return std::move(*site.config);
  }
  running_text_ = std::move(*text);
  running_revision_ = loaded.config->revision;
  return std::move(*loaded.config);
}

config::load_result config_changes::load_for_reload() {
  const auto text = site_text();
  const bool site_changed = !text || config::text_hash(*text) != state_.base;
  if (state_.active.empty() || site_changed) {
    if (!state_.active.empty() && text) {
      // Edited on site while the platform's stood: the site file wins, as at a start.
      auto loaded = config::load_config_file(site_path_, driver_parsers());
      if (!loaded.config) return loaded;  // refused: the platform's keeps running
      const auto given_up = state_.pending ? state_.pending->revision : state_.active;
      hooks_.raise(make_event(
          state_.pending ? event_kind::config_rolled_back : event_kind::config_changed,
          fmt::format("the site file {} was changed on site and reloaded; it stands (revision {}) over the "
                      "platform's configuration {}",
                      site_path_.string(), short_rev(loaded.config->revision), short_rev(given_up)),
          "site"));
      record(state_, "site_file", loaded.config->revision, given_up, "site",
             "the site file was changed on site", {});
      state_.active.clear();
      state_.confirmed.clear();
      state_.pending.reset();
      deadline_.cancel();
      state_.base = config::text_hash(*text);
      save_or_log();
      running_text_ = *text;
      return loaded;
    }
    if (text) running_text_ = *text;
    return config::load_config_file(site_path_, driver_parsers());
  }
  auto kept = history_->text_of(state_.active);
  if (!kept) return config::load_config_file(site_path_, driver_parsers());
  running_text_ = *kept;
  return config::load_config_candidate(*kept, fmt::format("revision {}", short_rev(state_.active)),
                                       site_path_, driver_parsers());
}

void config_changes::reloaded(const config::gateway_file& in_force) {
  running_revision_ = in_force.revision;
  gateway_id_ = in_force.gateway.id;
  confirm_ = in_force.remote.confirm;
}

config_changes::outcome config_changes::apply(const config_apply_command& c, const std::string& command_id,
                                              const config::gateway_file& running) {
  outcome out;
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
    auto lines = json::array();
    const auto all = loaded.error_text();
    for (std::size_t at = 0; at < all.size();) {
      const auto end = all.find('\n', at);
      lines.push_back(all.substr(at, end == std::string::npos ? std::string::npos : end - at));
      at = end == std::string::npos ? all.size() : end + 1;
    }
    out.error = fmt::format("the configuration is refused with {} error{}; nothing was changed: {}",
                            loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s",
                            lines.empty() ? std::string() : lines.front().get<std::string>());
    out.result["errors"] = std::move(lines);
    return out;
  }
  auto& next = *loaded.config;
  if (next.revision == running.revision) {
    out.error = fmt::format("the configuration is the one in force ({}): nothing to change",
                            short_rev(next.revision));
    return out;
  }
  if (auto what = needs_restart(running, next); !what.empty()) {
    out.error = fmt::format(
        "the change needs a restart to take effect ({}); a change from the platform must take effect at "
        "once to be confirmed: make it on site",
        what);
    return out;
  }
  if (!allows(next, "config_confirm")) {
    out.error =
        "the new configuration does not accept config_confirm ([uplink.mqtt] commands): it could never be "
        "confirmed and would be rolled back; keep config_confirm in the list";
    return out;
  }
  const auto diff = config::diff_summary(running_text_, text);
  const auto now = clock::now();
  const auto previous = running.revision;
  // On disk before it runs: a power cut from here on brings back `previous` at the next start.
  auto state = state_;
  state.base = config::text_hash(site_text().value_or(std::string()));
  if (state.active.empty()) state.confirmed.clear();
  state.active = next.revision;
  state.pending = config::pending_change{next.revision, previous, c.by, command_id, now, now + confirm_};
  record(state, "applied", next.revision, previous, c.by, {}, diff);
  try {
    history_->keep_text(previous, running_text_, state);
    history_->keep_text(next.revision, text, state);
    history_->save(state);
  } catch (const config::history_error& e) {
    out.error = fmt::format("the change cannot be kept on disk, so it is not applied: {}", e.what());
    return out;
  }
  state_ = std::move(state);
  const auto deadline = state_.pending->deadline;
  const auto wait = confirm_;
  spdlog::warn(
      "config change applied revision={} previous={} by={} command={} diff=\"{}\" action=\"rolled back at {} "
      "unless the platform confirms it\"",
      short_rev(next.revision), short_rev(previous), c.by, command_id, diff, iso8601(deadline));
  auto e = make_event(
      event_kind::config_changed,
      fmt::format(
          "configuration {} sent by {} (command {}) is in force in place of {}; it stands once the "
          "platform confirms it (config_confirm) within {} s, else {} comes back by itself; changes: {}",
          short_rev(next.revision), c.by, command_id, short_rev(previous), wait.count(), short_rev(previous),
          diff),
      c.by);
  e.value = static_cast<double>(wait.count());
  e.until = deadline;
  out.events.push_back(std::move(e));
  out.result = {{"revision", next.revision},
                {"previous", previous},
                {"confirm_within_s", wait.count()},
                {"rolled_back_at", iso8601(deadline)},
                {"diff", diff}};
  running_text_ = std::move(text);
  running_revision_ = next.revision;
  confirm_ = next.remote.confirm;
  hooks_.apply(std::move(next), "config_apply");
  arm_timer();
  return out;
}

void config_changes::arm_timer() {
  if (!state_.pending) return;
  const auto left = state_.pending->deadline - clock::now();
  deadline_.expires_after(std::max<std::chrono::steady_clock::duration>(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(left), std::chrono::seconds(0)));
  deadline_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_deadline();
  });
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
    out.error = fmt::format(
        "no change waits for a confirmation; the configuration in force is {}{}",
        short_rev(running_revision_),
        state_.changes.empty() || state_.changes.back().action != "rolled_back"
            ? std::string()
            : fmt::format(" (change {} was rolled back at {}: {})", short_rev(state_.changes.back().previous),
                          iso8601(state_.changes.back().time), state_.changes.back().reason));
    return out;
  }
  const auto p = *state_.pending;
  if (!p.revision.starts_with(c.revision)) {
    out.error =
        fmt::format("the change waiting is {}, not {}: confirm the revision config_apply's reply gave",
                    short_rev(p.revision), c.revision);
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
    out.error = fmt::format("the confirmation cannot be kept on disk: {}; send it again", e.what());
    return out;
  }
  state_ = std::move(state);
  deadline_.cancel();
  spdlog::info("config change confirmed revision={} by={}", short_rev(p.revision), c.by);
  auto e = make_event(event_kind::config_confirmed,
                      fmt::format("configuration {} confirmed by {}: it stands (it replaced {})",
                                  short_rev(p.revision), c.by, short_rev(p.previous)),
                      c.by);
  e.alarm_id = p.command_id;
  out.events.push_back(std::move(e));
  out.result = {{"revision", p.revision}};
  return out;
}

void config_changes::on_deadline() {
  if (!state_.pending) return;
  const auto p = *state_.pending;
  std::vector<std::string> why;
  if (!hooks_.uplink_connected()) {
    why.push_back("the uplink to the platform did not come back");
  } else {
    why.push_back("the platform did not confirm it");
  }
  why.back() += fmt::format(" within {} s",
                            std::chrono::duration_cast<std::chrono::seconds>(p.deadline - p.applied).count());
  for (auto& b : hooks_.buses_down()) why.push_back("bus " + b + " is down");
  const auto reason = fmt::format("{}", fmt::join(why, "; "));
  std::string note;
  auto back = load_kept(p.previous, note);
  if (!back) {
    spdlog::critical(
        "config rollback impossible revision={} previous={} problem=\"neither the configuration before nor "
        "the site file loads\" action=\"the change stays in force; fix {} on site\"",
        short_rev(p.revision), short_rev(p.previous), site_path_.string());
    return;
  }
  state_.pending.reset();
  state_.active = standing_name(config::text_hash(site_text().value_or(std::string())));
  record(state_, "rolled_back", back->revision, p.revision, p.by, reason, {});
  save_or_log();
  spdlog::warn("config change rolled back revision={} back_to={} reason=\"{}\"{}", short_rev(p.revision),
               short_rev(back->revision), reason, note);
  auto e = make_event(event_kind::config_rolled_back,
                      fmt::format("change {} sent by {} was rolled back: {}; configuration {} is back{}",
                                  short_rev(p.revision), p.by, reason, short_rev(back->revision), note),
                      p.by);
  e.alarm_id = p.command_id;
  hooks_.raise(std::move(e));
  confirm_ = back->remote.confirm;
  hooks_.apply(std::move(*back), "rolled back");
}

config_changes::outcome config_changes::restore(const std::string& revision, const std::string& by,
                                                const config::gateway_file& running) {
  outcome out;
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
  const auto was_text = running_text_, was_revision = running_revision_;
  auto back = load_kept(target, note);
  if (!back || !note.empty()) {
    running_text_ = was_text;
    running_revision_ = was_revision;
    out.error = fmt::format("revision {} cannot be put back{}", short_rev(target), note);
    return out;
  }
  const auto previous = running.revision;
  const auto site_hash = config::text_hash(site_text().value_or(std::string()));
  auto state = state_;
  state.base = site_hash;
  state.active = standing_name(site_hash);
  state.confirmed = state.active;
  state.pending.reset();
  record(state, "restored", back->revision, previous, by, {}, {});
  try {
    history_->save(state);
  } catch (const config::history_error& e) {
    out.error = fmt::format("the change cannot be kept on disk, so it is not made: {}", e.what());
    return out;
  }
  state_ = std::move(state);
  deadline_.cancel();
  spdlog::warn("config revision put back on site revision={} previous={} by={}", short_rev(back->revision),
               short_rev(previous), by);
  out.events.push_back(make_event(event_kind::config_changed,
                                  fmt::format("configuration {} put back on site by {} in place of {}",
                                              short_rev(back->revision), by, short_rev(previous)),
                                  by));
  out.result = {{"revision", back->revision}, {"previous", previous}};
  confirm_ = back->remote.confirm;
  hooks_.apply(std::move(*back), "put back on site");
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

std::string config_changes::standing_name(const std::string& site_hash) {
  if (config::text_hash(running_text_) == site_hash) return {};
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
  deadline_.cancel();
}

}  // namespace firegate
