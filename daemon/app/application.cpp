#include "application.hpp"

#include "config/config_loader.hpp"
#include "uplink/payloads.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <csignal>

namespace firegate {
namespace asio = boost::asio;
using namespace std::chrono_literals;

application::application(std::filesystem::path config_path, config::gateway_file cfg)
    : signals_(io_, SIGINT, SIGTERM, SIGHUP),
      ticker_(io_),
      flusher_(io_),
      config_path_(std::move(config_path)),
      cfg_(std::move(cfg)),
      random_(std::random_device{}()),
      rules_([this] { return new_event_id(); }) {
  for (const auto& d : cfg_.devices) devices_.emplace(d.name, &d);
}

application::~application() = default;

int application::run() {
  store_ = std::make_unique<store>(cfg_.storage.path);
  spdlog::info("storage open path={} schema={} outbox={} events={}", cfg_.storage.path,
               store_->user_version(), store_->outbox_depth(), store_->event_count());
  uplink_ = std::make_unique<mqtt_uplink>(io_.get_executor(), cfg_.mqtt, *store_);
  uplink_->start();
  if (const auto& moved = store_->moved_aside()) {
    // What was in the old file is not lost for good: it is kept for a technician to recover.
    spdlog::error(
        "storage was unreadable, moved aside path={} moved_to={} error=\"{}\" action=\"a fresh database is "
        "in "
        "use; keep the moved file for recovery\"",
        cfg_.storage.path, moved->moved_to, moved->reason);
    ++storage_faults_;
    event e;
    e.id = new_event_id();
    e.kind = event_kind::storage_fault;
    e.device = cfg_.gateway.id;
    e.time = clock::now();
    e.detail = fmt::format(
        "the database {} was unreadable at start ({}) and was moved to {}; anything in it "
        "not yet delivered was not sent; the file is kept for recovery",
        cfg_.storage.path, moved->reason, moved->moved_to);
    raise(std::move(e));
    uplink_->notify();
  }
  start_drivers();
  wait_signal();
  tick();
  schedule_flush();
  spdlog::info("firegated started version={} gateway={} site={} buses={} devices={}", FIREGATE_VERSION,
               cfg_.gateway.id, cfg_.site.id, cfg_.buses.size(), cfg_.devices.size());
  notifier_.ready(status_line());
  // Parsing a large site file leaves freed heap behind; hand it back before the long run.
  ::malloc_trim(0);
  io_.run();
  spdlog::info("firegated stopped outbox={}", store_->outbox_depth());
  return 0;
}

void application::start_drivers() {
  for (const auto& bus : cfg_.buses) {
    drivers_.push_back(create_driver(io_.get_executor(), bus, *this));
    drivers_.back()->start();
  }
}

void application::stop_drivers() {
  for (auto& d : drivers_) d->stop();
  drivers_.clear();
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
  stop_drivers();
  ticker_.cancel();
  flusher_.cancel();
  flush();  // what was read before the stop is stored and queued
  signals_.cancel();
  // Everything already stored is committed; give in-flight messages a moment to be acknowledged.
  uplink_->stop(1500ms);
}

void application::reload() {
  notifier_.reloading();
  auto loaded = config::load_config_file(config_path_, driver_parsers());
  if (!loaded.config) {
    spdlog::error("reload rejected file={} errors={} action=\"keeping the running configuration\"",
                  config_path_.string(), loaded.errors.size());
    for (const auto& e : loaded.errors.items()) {
      spdlog::error("config error file={} line={} key={} problem=\"{}\"", loaded.file, e.line, e.path,
                    e.message);
    }
    notifier_.ready(status_line());
    return;
  }
  auto next = std::move(*loaded.config);
  if (next.storage.path != cfg_.storage.path) {
    spdlog::warn(
        "reload storage.path changed from={} to={} action=\"kept; restart firegated to move storage\"",
        cfg_.storage.path, next.storage.path);
    next.storage.path = cfg_.storage.path;
  }
  stop_drivers();
  const bool uplink_changed = next.mqtt != cfg_.mqtt;
  cfg_ = std::move(next);
  devices_.clear();
  for (const auto& d : cfg_.devices) devices_.emplace(d.name, &d);
  if (uplink_changed) {
    spdlog::info("reload uplink changed broker={}:{} action=reconnect", cfg_.mqtt.host, cfg_.mqtt.port);
    uplink_->stop(500ms);
    uplink_ = std::make_unique<mqtt_uplink>(io_.get_executor(), cfg_.mqtt, *store_);
    uplink_->start();
  }
  start_drivers();
  spdlog::info("reload applied file={} buses={} devices={}", config_path_.string(), cfg_.buses.size(),
               cfg_.devices.size());
  notifier_.ready(status_line());
}

void application::tick() {
  auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(10s);
  if (auto wd = systemd_notifier::watchdog_interval()) {
    interval = std::min(interval, std::chrono::duration_cast<std::chrono::steady_clock::duration>(*wd));
  }
  notifier_.watchdog();
  notifier_.status(status_line());
  ticker_.expires_after(interval);
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) tick();
  });
}

std::string application::status_line() const {
  std::size_t outbox = 0;
  try {
    outbox = store_ ? store_->outbox_depth() : 0;
  } catch (const store_error&) {
    // Reported where it happens; the status line still goes out.
  }
  return fmt::format("devices={} offline={} fire_alarms={} uplink={} outbox={} storage_faults={}",
                     cfg_.devices.size(), devices_offline_, rules_.active_fires().size(),
                     uplink_ && uplink_->connected() ? "connected" : "disconnected", outbox, storage_faults_);
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
  // Readings wait for the next flush, so one transaction carries a second of a whole fleet's polls.
  try {
    auto events = rules_.on_readings(readings);
    for (auto& e : events) raise(std::move(e));
    if (!events.empty()) uplink_->notify();
  } catch (const store_error& e) {
    storage_fault(e, readings.front().device);
  }
  batch_.insert(batch_.end(), readings.begin(), readings.end());
  if (batch_.size() >= max_batch) flush();
}

void application::schedule_flush() {
  flusher_.expires_after(cfg_.storage.flush_interval);
  flusher_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    flush();
    schedule_flush();
  });
}

void application::flush() {
  if (batch_.empty() || !store_) return;
  try {
    std::vector<std::string> messages;
    if (cfg_.mqtt.telemetry) messages = telemetry_messages(batch_, cfg_);
    store_->append_telemetry(batch_, topic_for(cfg_, "telemetry"), messages);
    batch_.clear();
    uplink_->notify();
  } catch (const store_error& e) {
    storage_fault(e, batch_.front().device);
    // Kept for the next flush, within bounds: the oldest readings go first when storage stays down.
    if (batch_.size() > 2 * max_batch) {
      const auto dropped = batch_.size() - max_batch;
      batch_.erase(batch_.begin(), batch_.begin() + static_cast<std::ptrdiff_t>(dropped));
      spdlog::error("readings dropped count={} reason=\"storage failing; check the disk\"", dropped);
    }
  }
}

void application::storage_fault(const store_error& e, std::string_view device) {
  // Reported as what it is, not as a fault of the bus that delivered the reading. Holding alarms in
  // memory until the store recovers comes with the store issue.
  ++storage_faults_;
  spdlog::critical("storage write failed device={} faults={} error=\"{}\"", device, storage_faults_,
                   e.what());
}

void application::on_device_status(const device_status& status) {
  if (status.online) {
    if (devices_offline_ > 0) --devices_offline_;
  } else {
    ++devices_offline_;
  }
  try {
    for (auto& e : rules_.on_device_status(status)) raise(std::move(e));
  } catch (const store_error& e) {
    storage_fault(e, status.device);
  }
  uplink_->notify();
}

void application::raise(event e) {
  e.seq = store_->next_event_seq();
  const auto* device = find_device(e.device);
  const bool is_fire = e.kind == event_kind::fire_alarm || e.kind == event_kind::fire_recovery;
  const auto l = is_fire ? lane::alarm : lane::fault;
  store_->record_event(e, l, topic_for(cfg_, is_fire ? "alarm" : "event"), event_json(e, cfg_, device));
  const auto level = e.kind == event_kind::fire_alarm    ? spdlog::level::critical
                     : category_of(e.kind) == "recovery" ? spdlog::level::info
                                                         : spdlog::level::warn;
  spdlog::log(level, "event raised id={} seq={} type={} device={} location=\"{}\" value={} detail=\"{}\"",
              e.id, e.seq, to_string(e.kind), e.device, device ? device->location : "", e.value, e.detail);
}

}  // namespace firegate
