#include "application.hpp"

#include "domain/event_record.hpp"

#include "config/config_loader.hpp"
#include "mqtt_client/paho_support.hpp"
#include "uplink/gb26875/gb26875_link.hpp"
#include "uplink/mqtt/commands.hpp"
#include "uplink/mqtt/payloads.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <malloc.h>
#include <algorithm>
#include <csignal>
#include <limits>
#include <utility>

namespace firegate {
namespace asio = boost::asio;
using namespace std::chrono_literals;

application::application(std::filesystem::path config_path, config::gateway_file cfg)
    : signals_(io_, SIGINT, SIGTERM, SIGHUP),
      ticker_(io_),
      clock_timer_(io_),
      flusher_(io_),
      config_path_(std::move(config_path)),
      changes_(make_config_changes()),
      cfg_(changes_->at_start(std::move(cfg))),
      random_(std::random_device{}()),
      rules_(
          device_rules(), [this] { return new_event_id(); }, cfg_.alarms),
      rules_timer_(io_) {
  for (const auto& d : cfg_.devices) devices_.emplace(d.name, &d);
  config_state_.revision = cfg_.revision;
  config_state_.loaded = clock::now();
}

application::~application() {
  // MQTT clients retired by a stop or a reload, or still owned here (run() left by an exception),
  // are destroyed off the loop and post to it: they go, and are waited for, before io_ does.
  drivers_.clear();
  // run() left by an exception (else they are gone already). A handler left in the loop may still
  // hold an uplink: its MQTT client is retired now, not when the loop's handlers go.
  for (auto& u : uplinks_) u.link->stop(uplink_stop::abandoned);
  uplinks_.clear();
  paho::join_retired();
}

void application::reload_refused(const config::load_result& loaded) {
  config_state_.rejected = clock::now();
  auto lines = loaded.error_lines();
  if (lines.size() > 5) lines.resize(5);
  config_state_.errors = std::move(lines);
  if (!config_rejected_id_.empty()) return;  // one open event until a configuration is applied again
  event e;
  e.id = new_event_id();
  config_rejected_id_ = e.id;
  e.kind = event_kind::config_rejected;
  e.device = cfg_.gateway.id;
  e.time = *config_state_.rejected;
  e.value = static_cast<double>(loaded.errors.size());
  e.detail = fmt::format(
      "a reload of {} was refused with {} error{} (first: {}); the gateway keeps running configuration {} "
      "loaded {}; fix the file (firegated --check-config {}) and reload",
      config_path_.string(), loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s",
      config_state_.errors.empty() ? std::string("-") : config_state_.errors.front(),
      config_state_.revision.substr(0, 12), iso8601(config_state_.loaded), config_path_.string());
  raise(std::move(e));
}

void application::configuration_applied(const std::string& how) {
  config_state_.revision = cfg_.revision;
  config_state_.loaded = clock::now();
  // A refusal ends when what was refused loads again: a reload, a start, the site file put back;
  // not a change from the platform or a rollback, which say nothing of the file on disk.
  if (how != "reloaded" && how != "firegated started" && how != "site file put back") return;
  config_state_.rejected.reset();
  config_state_.errors.clear();
  if (config_rejected_id_.empty()) return;
  event e;
  e.id = new_event_id();
  e.kind = event_kind::config_applied;
  e.device = cfg_.gateway.id;
  e.alarm_id = std::exchange(config_rejected_id_, {});
  e.time = config_state_.loaded;
  e.detail = fmt::format("configuration {} from {} is in force ({})", config_state_.revision.substr(0, 12),
                         config_path_.string(), how);
  raise(std::move(e));
}

std::vector<std::string> application::bus_names() const {
  std::vector<std::string> out;
  for (const auto& bus : cfg_.buses) out.push_back(bus.name);
  return out;
}

std::vector<alarm_engine::device_rules> application::device_rules() const {
  std::vector<alarm_engine::device_rules> out;
  for (const auto& d : cfg_.catalogue.devices()) out.emplace_back(d.name, d.rules);
  return out;
}

void application::tick_rules() {
  rules_timer_.expires_after(1s);
  rules_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    for (auto& e : rules_.on_tick(rules::mono::now(), clock::now())) raise(std::move(e));
    tick_rules();
  });
}

int application::run() {
  // One malloc arena for every thread: the loop does nearly all the allocating, and an arena for
  // each of the store's and Paho's threads cost 0.6–0.8 MiB of RSS at 1,000 devices for no
  // measurable CPU (docs/performance.md).
  ::mallopt(M_ARENA_MAX, 1);
  // The clock's state first, logged as any change of it is: the events of the start carry it. No
  // fault can be due at the first reading (its count starts there), so nothing is raised before
  // the store exists.
  check_clock();
  std::unique_ptr<store> opened;
  std::string open_error;
  try {
    // A migration at start (schema 8 packs every reading: seconds for a full file, longer on a slow
    // card) keeps asking systemd for time, so that TimeoutStartSec= does not kill it into a loop.
    opened = std::make_unique<store>(cfg_.storage.path, [this](std::string_view what) {
      notifier_.extend_start(std::chrono::seconds(30), what);
      spdlog::info("storage migrating path={} progress=\"{}\"", cfg_.storage.path, what);
    });
    opened->set_bounds({cfg_.storage.max_size_mb << 20, cfg_.storage.max_age});
  } catch (const store_locked&) {
    throw;  // another firegated runs here: this one must not
  } catch (const store_error& e) {
    // A fire gateway keeps raising alarms without its disk (a read-only SD card, a missing
    // directory): a database in memory stands in, bounded, and the platform is told.
    open_error = e.what();
    opened = std::make_unique<store>(":memory:");
    opened->set_bounds({std::min<std::uint64_t>(cfg_.storage.max_size_mb, 16) << 20, cfg_.storage.max_age});
    storage_in_memory_ = true;
  }
  if (!opened->integrity_note().empty()) {
    spdlog::warn("storage integrity check incomplete path={} note=\"{}\"", cfg_.storage.path,
                 opened->integrity_note());
  }
  // A damaged file moved aside: what it still gives is carried into the fresh one first, so that
  // its open alarms are restored and its undelivered messages queued below.
  const auto moved = opened->moved_aside();
  salvage_report salvaged;
  if (moved) salvaged = salvage_at_start(*opened);
  spdlog::info("storage open path={} schema={} outbox={} events={} used_mib={:.1f} max_mib={}",
               storage_in_memory_ ? ":memory:" : cfg_.storage.path, opened->user_version(),
               opened->outbox_depth(), opened->event_count(),
               static_cast<double>(opened->used_bytes()) / (1 << 20), cfg_.storage.max_size_mb);
  next_seq_ = opened->next_event_seq();
  const auto open = opened->open_alarms();
  const auto false_alarms = opened->false_alarms_since(local_midnight(clock::now()));
  auto remembered_commands = recent_commands(*opened);
  // Each configured uplink has its delivery bit, in the registry's order; stored telemetry is
  // born delivered for those that do not send it (the GB/T 26875.3 one sends live analog values).
  const auto configured = configured_uplinks(cfg_);
  unsigned telemetry = 0;
  for (unsigned bit = 0; bit < configured.size(); ++bit) {
    if (configured[bit]->telemetry) telemetry |= 1U << bit;
  }
  opened->set_uplinks(static_cast<unsigned>(configured.size()), telemetry);
  store_ = std::make_unique<store_worker>(std::move(opened), [this](store& s) { replace_damaged(s); });
  start_commands(std::move(remembered_commands));
  start_uplinks();
  if (moved) storage_damaged(*moved, std::move(salvaged));
  if (storage_in_memory_) storage_failed(open_error, "open");
  // A change from the platform rolled back at this start, or set aside by an edit on site.
  for (auto& e : changes_->start_events()) raise(std::move(e));
  start_drivers();
  // After the drivers exist (they run only once the loop does), so that a linkage reset for an
  // alarm ended here has its bus to write through.
  std::vector<event> ended;
  if (!open.empty() || !false_alarms.empty()) {
    // Still open at the last stop: active again without being raised again (docs/alarms.md).
    spdlog::info("alarms restored open={} devices_with_false_alarms_today={}", open.size(),
                 false_alarms.size());
    ended = rules_.restore(open, false_alarms, rules::mono::now(), clock::now());
  }
  for (auto& e : rules_.end_bus_faults_except(bus_names(), clock::now())) ended.push_back(std::move(e));
  // The outputs the open alarms hold are held again, and the others released, each written only where
  // it reads back different: a restart during a fire never leaves the sounder off, and one after a
  // stop between a recovery and its reset does not leave it on. Then what the restore ended or
  // raised (a shield run out while stopped) changes them as usual.
  run_linkage_actions(linkage_.restore(cfg_.linkages, rules_.open_alarms()));
  for (auto& e : ended) raise(std::move(e));
  // A refused reload left open at the last stop: this start applied a configuration that loads.
  for (const auto& a : open) {
    if (a.kind == event_kind::config_rejected) config_rejected_id_ = a.id;
    if (a.kind == event_kind::clock_unsynchronised) clock_.fault_id = a.id;
  }
  configuration_applied("firegated started");
  start_control();
  start_metrics();
  wait_signal();
  // Held since main: one that came during the start is taken now.
  const auto held = signals_taken();
  pthread_sigmask(SIG_UNBLOCK, &held, nullptr);
  enforce_bounds();
  tick();
  schedule_clock();
  tick_rules();
  schedule_flush();
  spdlog::info("firegated started version={} gateway={} site={} buses={} devices={}", FIREGATE_VERSION,
               cfg_.gateway.id, cfg_.site.id, cfg_.buses.size(), cfg_.devices.size());
  notifier_.ready(status_line());
  // Parsing a large site file leaves freed heap behind; hand it back before the long run.
  ::malloc_trim(0);
  io_.run();
  // Everything posted to the store runs before it closes: the last flush is committed.
  std::size_t outbox = 0;
  try {
    outbox = store_->call([](store& s) { return s.outbox_depth(); });
  } catch (const store_error&) {
  }
  metrics_server_.reset();
  uplinks_.clear();
  commands_.reset();
  store_.reset();
  control_api_.reset();
  spdlog::info("firegated stopped outbox={}", outbox);
  return 0;
}

void application::start_drivers() {
  for (const auto& bus : cfg_.buses) {
    drivers_.push_back(create_driver(io_.get_executor(), bus, *this));
    drivers_.back()->start();
  }
}

void application::start_control() {
  control_api_ = std::make_unique<control_api>(
      io_, *store_, cfg_, config_path_, control_api::sources{rules_, linkage_, drivers_, batch_},
      control_api::hooks{
          [this](std::optional<std::array<std::size_t, 3>> lanes) { return health(lanes); },
          [this](const command_body& body) { return carry_out(body); },
          [this](event e) { raise(std::move(e)); }, [this] { return new_event_id(); }, [this] { flush(); },
          [this] {
            auto* u = platform_uplink();
            if (u == nullptr) return control_api::link_state{};
            return control_api::link_state{u->connected(), u->last_ack(), u->ack_wait(), u->ack_timeouts()};
          },
          [this]() -> gb26875_uplink* {
            for (auto& u : uplinks_) {
              if (auto* gb = dynamic_cast<gb26875_link*>(u.link.get())) return &gb->link();
            }
            return nullptr;
          },
          [this](std::function<void(std::string)> done) { scrape_metrics(std::move(done)); },
          [this] { return changes_->history(); },
          [this](const std::string& revision, const std::string& by) {
            return changes_->restore(revision, by, cfg_);
          }});
  control_api_->open();
}

void application::stop_drivers() {
  for (auto& d : drivers_) d->stop();
  drivers_.clear();
}

sigset_t application::signals_taken() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
  return set;
}

void application::wait_signal() {
  signals_.async_wait([this](boost::system::error_code ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      reload();
      wait_signal();
    } else {
      spdlog::info("signal received signal={} action=stop", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      shutdown();
    }
  });
}

void application::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  notifier_.stopping();
  // First: a request under way (a scan) must not go on through drivers being stopped.
  if (control_api_) control_api_->stop();
  if (metrics_server_) metrics_server_->stop();
  if (commands_) commands_->stop();
  changes_->stop();
  stop_drivers();
  ticker_.cancel();
  clock_timer_.cancel();
  flusher_.cancel();
  rules_timer_.cancel();
  flush();  // what was read before the stop is stored and queued
  signals_.cancel();
  // The goodbye replaces the retained status (the broker sends the last will only when the
  // connection is lost without one).
  // Each says goodbye where its protocol has one, and gives what is in flight a moment.
  for (auto& u : uplinks_) u.link->stop(uplink_stop::daemon_stops);
}

void application::reload() {
  notifier_.reloading();
  auto loaded = changes_->load_for_reload();
  if (!loaded.config) {
    spdlog::error(
        "reload rejected file={} errors={} revision={} action=\"keeping the running configuration\"",
        config_path_.string(), loaded.errors.size(), config_state_.revision.substr(0, 12));
    for (const auto& e : loaded.errors.items()) {
      spdlog::error("config error file={} line={} key={} problem=\"{}\"", loaded.file, e.line, e.path,
                    e.message);
    }
    reload_refused(loaded);
    metrics_.reloaded(false);
    notifier_.ready(status_line());
    return;
  }
  apply_configuration(std::move(*loaded.config), "reloaded");
}

void application::apply_configuration(config::gateway_file next, const std::string& how) {
  // What the new file allows but will not work well, as at a start (daemon/main.cpp).
  for (const auto& w : config::config_warnings(next)) {
    spdlog::warn("config warning revision={} line={} key={} problem=\"{}\"", next.revision.substr(0, 12),
                 w.line, w.path, w.message);
  }
  if (next.storage.path != cfg_.storage.path) {
    spdlog::warn(
        "reload storage.path changed from={} to={} action=\"kept; restart firegated to move storage\"",
        cfg_.storage.path, next.storage.path);
    next.storage.path = cfg_.storage.path;
  }
  // Uplinks have their delivery bits in the store: adding or removing one waits for a restart.
  const auto& uplinks = registered_uplinks();
  if (std::any_of(uplinks.begin(), uplinks.end(),
                  [&](const uplink_entry& e) { return e.configured(next) != e.configured(cfg_); })) {
    spdlog::warn(
        "reload adds or removes an uplink action=\"kept as running; restart firegated for that change\"");
    for (const auto& e : uplinks) e.keep(next, cfg_);
  }
  stop_drivers();
  offline_devices_.clear();  // the new drivers say again what they find
  if (next.storage != cfg_.storage) {
    store_->post([bounds = storage_bounds{next.storage.max_size_mb << 20, next.storage.max_age}](store& s) {
      try {
        s.set_bounds(bounds);
      } catch (const store_error& e) {
        spdlog::error("reload storage bounds not applied error=\"{}\"", e.what());
      }
    });
  }
  std::vector<bool> remake;
  for (const auto& u : uplinks_) remake.push_back(u.entry->changed(cfg_, next));
  const bool control_changed = next.control != cfg_.control;
  const bool metrics_changed = next.metrics != cfg_.metrics;
  cfg_ = std::move(next);
  // Report strategies start again from the new configuration: each point's next value goes (a
  // device removed is forgotten, a name given to another sensor or a changed strategy is not
  // compared with what was sent before; it costs one full poll a device).
  reports_.clear();
  devices_.clear();
  for (const auto& d : cfg_.devices) devices_.emplace(d.name, &d);
  for (std::size_t i = 0; i < uplinks_.size(); ++i) {
    if (!remake[i]) continue;
    auto& u = uplinks_[i];
    u.link->stop(uplink_stop::reloaded);
    u.link = make_uplink(*u.entry, u.bit);
    u.link->start();
  }
  if (control_changed) control_api_->open();
  // A changed [metrics], or an endpoint that could not listen before (the port is free now).
  if (metrics_changed || (cfg_.metrics.enabled && !metrics_server_)) start_metrics();
  start_drivers();
  // With the new drivers in place: an alarm the reload ends may reset a linkage output.
  for (auto& e : rules_.reconfigure(device_rules(), cfg_.alarms, clock::now())) raise(std::move(e));
  // The clock read now, at the pace and from the source the configuration sets (the wait under
  // way, at the old pace, is cancelled).
  schedule_clock();
  for (auto& e : rules_.end_bus_faults_except(bus_names(), clock::now())) raise(std::move(e));
  // The linkages themselves may have changed: outputs are held by the new ones from now on.
  update_linkages(nullptr);
  configuration_applied(how);
  changes_->reloaded(cfg_);
  metrics_.reloaded(true);
  spdlog::info("reload applied how=\"{}\" file={} source=\"{}\" buses={} devices={} revision={}", how,
               config_path_.string(), changes_->source(), cfg_.buses.size(), cfg_.devices.size(),
               cfg_.revision.substr(0, 12));
  notifier_.ready(status_line());
}

void application::tick() {
  auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(10s);
  if (auto wd = systemd_notifier::watchdog_interval()) {
    interval = std::min(interval, std::chrono::duration_cast<std::chrono::steady_clock::duration>(*wd));
  }
  notifier_.watchdog();
  notifier_.status(status_line());
  if (std::chrono::steady_clock::now() - last_bounds_check_ >= 60s) enforce_bounds();
  // A backlog read that failed (a disk hiccup) is tried again at least this often.
  for (auto& u : uplinks_) u.link->notify();
  store_->post([this](store& s) {
    try {
      const auto lanes = s.outbox_depth_by_lane();
      asio::post(io_, [this, lanes] {
        outbox_lanes_ = lanes;
        outbox_depth_ = lanes[0] + lanes[1] + lanes[2];
      });
    } catch (const store_error&) {
      // Reported by the writes that fail.
    }
  });
  ticker_.expires_after(interval);
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) tick();
  });
}

std::string application::status_line() const {
  return fmt::format("devices={} offline={} fire_alarms={} uplink={} outbox={} storage={} storage_faults={}",
                     cfg_.devices.size(), offline_devices_.size(), rules_.active_fires(),
                     main_uplink() != nullptr && main_uplink()->connected() ? "connected" : "disconnected",
                     outbox_depth_, storage_failing_ ? "failing" : "ok", storage_faults_);
}

const config::device_config* application::find_device(const std::string& name) const {
  auto it = devices_.find(name);
  return it == devices_.end() ? nullptr : it->second;
}

std::string application::new_event_id() {
  // UUID v4 (RFC 4122 §4.4).
  std::uniform_int_distribution<std::uint64_t> dist;
  std::uint64_t hi = dist(random_), lo = dist(random_);
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF,
                     lo >> 48, lo & 0xFFFFFFFFFFFFULL);
}

void application::on_readings(std::span<const reading> readings) {
  if (readings.empty()) return;
  // Rules decide at once; an event is committed with a full sync before the uplink sees it.
  // Readings wait for the next flush (flush_interval_ms, or flush_at readings), so one transaction
  // carries seconds of a whole fleet's polls in whole pages (docs/storage.md, "Flash").
  for (auto& e : rules_.on_readings(readings, rules::mono::now())) raise(std::move(e));
  if (commands_) commands_->on_readings(readings);
  for (auto& u : uplinks_) u.link->on_readings(readings);
  if (control_api_) control_api_->on_readings(readings);
  // Which of them telemetry carries: each point's report strategy (domain/report.hpp). A poll's
  // readings are one device's.
  const auto* described = cfg_.catalogue.find(readings.front().device);
  const auto from = batch_.size();
  batch_.insert(batch_.end(), readings.begin(), readings.end());
  for (auto i = from; i < batch_.size(); ++i) {
    auto& r = batch_[i];
    r.reported = described == nullptr || reports_.decide(r, described->report(r.point));
  }
  if (batch_.size() >= flush_at) flush();
}

void application::on_device_status(const device_status& status) {
  if (status.online) {
    offline_devices_.erase(status.device);
  } else {
    offline_devices_.insert(status.device);
  }
  for (auto& e : rules_.on_device_status(status, rules::mono::now())) raise(std::move(e));
  // An output device answering again gets the writes it missed.
  if (status.online) update_linkages(nullptr);
}

void application::on_device_quality(const device_quality& quality) {
  for (auto& e : rules_.on_device_quality(quality)) raise(std::move(e));
}

void application::on_bus_status(const bus_status& status) {
  for (auto& e : rules_.on_bus_status(status)) raise(std::move(e));
}

bus_driver* application::driver_of(const std::string& device) {
  const auto* d = find_device(device);
  if (d == nullptr) return nullptr;
  for (std::size_t i = 0; i < cfg_.buses.size() && i < drivers_.size(); ++i) {
    if (cfg_.buses[i].name == d->bus) return drivers_[i].get();
  }
  return nullptr;
}

namespace {

/// Whether an event changes which alarms are open (and so which linkage outputs they hold).
bool changes_open_alarms(event_kind kind) {
  switch (kind) {
    case event_kind::fire_alarm:
    case event_kind::fire_recovery:
    case event_kind::supervisory_alarm:
    case event_kind::supervisory_recovery:
    case event_kind::device_fault:
    case event_kind::device_fault_recovery:
    case event_kind::alarm_escalation:
      return true;
    default:
      return false;
  }
}

}  // namespace

void application::update_linkages(const event* cause) {
  run_linkage_actions(linkage_.update(cfg_.linkages, rules_.open_alarms(), cause));
}

void application::run_linkage_actions(std::vector<linkage_outputs::action> actions) {
  for (auto& a : actions) {
    auto report = [this, a](const write_outcome& o) {
      if (stopping_) {
        spdlog::warn("linkage not completed at the stop linkage={} device={} write={}",
                     fmt::join(a.linkages, ","), a.device, a.write);
        return;
      }
      const bool was_in_doubt = linkage_.written(a.device, a.write, a.value, !o.error);
      if (o.unchanged) {
        spdlog::info("linkage holds linkage={} device={} write={} value={} alarm={} detail=\"{}\"",
                     fmt::join(a.linkages, ","), a.device, a.write, a.value, a.alarm_id, o.detail);
        return;
      }
      if (o.error && (was_in_doubt || (a.at_start && a.reset))) {
        // Said once when the output went into doubt; a release at start of an output no alarm holds
        // is housekeeping. Both are tried again when the device answers.
        spdlog::warn("linkage write failed again linkage={} device={} write={} value={} error=\"{}\"",
                     fmt::join(a.linkages, ","), a.device, a.write, a.value, o.detail);
        return;
      }
      event done;
      done.id = new_event_id();
      done.kind = o.error ? event_kind::linkage_failed : event_kind::linkage_done;
      done.device = a.device;
      done.point = a.write;
      done.value = a.value;
      done.time = clock::now();
      done.alarm_id = a.alarm_id;
      done.detail = o.error ? fmt::format("{}: writing {} = {} failed: {}; act by hand", a.why, a.write,
                                          a.value, o.detail)
                            : fmt::format("{}: {}", a.why, o.detail);
      raise(std::move(done));
    };
    auto* driver = driver_of(a.device);
    if (driver == nullptr) {
      report({std::make_error_code(std::errc::no_such_device), false, "its bus is not running"});
      continue;
    }
    spdlog::info(
        "linkage started linkage={} device={} write={} value={} alarm={} reset={} only_if_differs={}",
        fmt::join(a.linkages, ","), a.device, a.write, a.value, a.alarm_id, a.reset, a.only_if_differs);
    driver->write({a.device, a.write, a.value, a.only_if_differs}, std::move(report));
  }
}

std::string application::label_of(const std::string& device, const std::string& point, double value) const {
  return cfg_.catalogue.label(device, point, value);
}

void application::raise(event e) {
  // Enumerated values say what they mean wherever an operator reads them ("state = fire").
  if (!e.point.empty() && e.value_label.empty()) e.value_label = label_of(e.device, e.point, e.value);
  for (auto& x : e.evidence) {
    if (x.label.empty()) x.label = label_of(e.device, x.point, x.value);
  }
  // A test alarm drives nothing: a detector under maintenance must not trip a breaker.
  if (changes_open_alarms(e.kind) && !e.test) update_linkages(&e);
  // Its time is evidence only as good as the clock that gave it.
  if (!e.clock_synchronised) e.clock_synchronised = clock_.synchronised_now();
  e.seq = next_seq_++;
  metrics_.raised(e, clock::now());
  const bool is_alarm = on_alarm_lane(e.kind);
  const auto l = is_alarm ? lane::alarm : lane::fault;
  // Stored as its record; each uplink renders it into its own format as it sends it.
  outbox_item item{0,
                   l,
                   topic_for(cfg_, is_alarm ? "alarm" : "event"),
                   to_record(e),
                   {},
                   std::make_shared<const event>(e)};
  // Committed with a full sync, ahead of any queued telemetry, before the uplink sees it. When the
  // store cannot take it, it goes out from memory all the same.
  store_->post(
      [this, e = std::move(e), item = std::move(item)](store& s) mutable {
        std::string error;
        bool damage = false;
        try {
          item.id = s.record_event(e, item.lane, item.topic, item.payload);
        } catch (const store_error& x) {
          error = x.what();
          damage = s.damaged();
          item.id = -static_cast<std::int64_t>(e.seq);
        }
        asio::post(io_, [this, e = std::move(e), item = std::move(item), error, damage]() mutable {
          // Logged once stored (or not): a line saying stored=true means it is on disk.
          const auto* d = find_device(e.device);
          const auto severity = severity_of(e.kind);
          const auto level = severity == "critical" && !e.test ? spdlog::level::critical
                             : severity == "info" || e.test    ? spdlog::level::info
                                                               : spdlog::level::warn;
          spdlog::log(
              level,
              "event raised id={} seq={} type={} device={} location=\"{}\" rule={} value={} stored={} "
              "detail=\"{}\"",
              e.id, e.seq, to_string(e.kind), e.device, d ? d->location : "", e.rule.empty() ? "-" : e.rule,
              e.value, error.empty(), e.detail);
          // The damaged file is replaced right after this job: the event is written again into the
          // fresh one, so that it is kept (a second message with the same id may follow).
          if (error.empty()) metrics_.stored(e, clock::now());
          if (damage) record_again(e, item);
          // Recovery is declared by a flush, the larger write, not by one small event.
          if (!error.empty()) storage_failed(error, "event", damage);
          if (control_api_) control_api_->on_event(e);
          // A recovery, acknowledgement or escalation names its alarm: after a restart it waits
          // until that alarm cannot still be unread in the store (uplink/outbox_order.hpp).
          const bool follows = !e.alarm_id.empty();
          offer_to_uplinks(std::move(item), follows);
        });
      },
      store_worker::priority::urgent);
}

}  // namespace firegate
