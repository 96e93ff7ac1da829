// The MQTT ingest bus: a Paho client on the site broker. Paho's callback thread only queues each
// message in the inbox (bounded, fair between topics) and wakes the loop, unless the loop is to look
// again by itself (drain_hold); the loop decodes them in batches, so a flood never holds the loop
// for long. Per device: a token-bucket rate limit (the excess dropped, the latest message kept and
// taken when the device is within its rate again), duplicates and late messages dropped by the
// profile's counter, last-seen offline detection.
// This file: the connection, the ticks and the driver the application holds (ingest_link.hpp);
// each message is ingest_messages.cpp.

#include "ingest_link.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace firegate::mqtt_ingest {

namespace {

class ingest_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mqtt_ingest"; }
  std::string message(int code) const override {
    switch (static_cast<ingest_errc>(code)) {
      case ingest_errc::silent:
        return "no message within the device's offline_after_s";
      case ingest_errc::broker_down:
        return "the site broker is unreachable, so nothing from the device arrives";
    }
    return "unknown";
  }
};

}  // namespace

std::error_code make_error(ingest_errc e) {
  static const ingest_category category;
  return {static_cast<int>(e), category};
}

ingest_link::ingest_link(asio::any_io_executor ex, std::string name,
                         std::shared_ptr<const ingest_bus_settings> s, reading_sink& sink)
    : executor_(std::move(ex)),
      name_(std::move(name)),
      settings_(std::move(s)),
      sink_(sink),
      tick_(executor_),
      retry_(executor_),
      hold_(executor_),
      inbox_(std::make_shared<inbox>(inbox::limits{settings_->queue_limit, 16u << 20,
                                                   std::max<std::size_t>(50, settings_->queue_limit / 20),
                                                   max_payload_bytes})) {
  const auto start = steady::now();
  for (const auto& d : settings_->devices) {
    device_state st;
    st.settings = &d;
    st.counters.device = d.name;
    st.counters.bus = name_;
    st.counters.address = address_of(d);
    st.last_seen = start;
    st.limiter = rate_limiter<inbound>(settings_->max_rate, settings_->burst, start);
    if (d.profile) {
      by_id_[{d.profile->name, d.id}] = devices_.size();
      if (std::find(profiles_.begin(), profiles_.end(), d.profile) == profiles_.end())
        profiles_.push_back(d.profile);
    }
    devices_.push_back(std::move(st));
  }
  paho::loop_client::handlers h;
  h.connected = [this](bool session_kept) { on_connected(session_kept); };
  h.connect_failed = [this](const std::string& why) { on_connect_failed(why); };
  h.connection_lost = [this](const std::string& cause) { on_connection_lost(cause); };
  h.subscribed = [this](const std::string& filter, bool ok, const std::string& why) {
    if (ok) {
      if (++granted_ == filters().size())
        spdlog::info("mqtt bus subscribed bus={} subscriptions=\"{}\"", name_, subscriptions_text());
      return;
    }
    spdlog::error(
        "mqtt bus cannot subscribe bus={} topic={} error=\"{}\" check=\"the broker's ACL for client {}\"",
        name_, filter, why, settings_->client_id);
  };
  // Paho's thread: only the inbox, which has its own lock; the loop is woken to drain it (unless
  // it is to look again by itself: drain_hold).
  client_ = std::make_unique<paho::loop_client>(
      executor_, paho::server_uri(settings_->host, settings_->port, settings_->tls.has_value()),
      settings_->client_id, settings_->mqtt5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1, std::move(h),
      [box = inbox_](const mqtt::message& m) {
        const auto& payload = m.get_payload_ref();
        return box->push(m.get_topic(), std::string_view(payload.data(), payload.size()), m.is_retained(),
                         clock::now());
      },
      [this] { drain(); });
}

void ingest_link::start() {
  started_ = steady::now();
  for (auto& d : devices_) d.last_seen = started_;
  connect();
  asio::co_spawn(
      executor_, [self = shared_from_this()] { return self->ticks(); },
      // An exception out of a tick ends the loop's run, as a handler's would, instead of the ticks
      // stopping unseen (silent sensors never going offline).
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
}

void ingest_link::stop() {
  if (stopped_) return;
  // What waits in the inbox (in a burst, up to drain_hold of it) Paho has acknowledged to the
  // broker already (QoS 1): taken now, or a reload or a stop would lose it, a fire among it.
  // (What Paho hands over after this moment, until the client is retired, is not: as before.)
  hold_.cancel();
  bool more = false;
  auto waiting = inbox_->take(inbox_->size(), more);
  try {
    for (auto& m : waiting) handle(std::move(m));
  } catch (const std::exception& e) {
    // Not the stop's to fail on (a reload goes on): the fault is in what the messages went to.
    spdlog::error(
        "mqtt bus loop error bus={} while=\"taking the messages waiting at its stop\" error=\"{}\" "
        "check=\"a fault in the gateway: report this line and the log before it\"",
        name_, e.what());
  }
  stopped_ = true;
  tick_.cancel();
  retry_.cancel();
  // A site broker that stopped answering holds a disconnect for its timeout: never the loop.
  client_->retire(connected_ || connecting_ ? std::optional(std::chrono::milliseconds(0)) : std::nullopt);
  connected_ = false;
}

std::vector<device_counters> ingest_link::counters() const {
  std::vector<device_counters> out;
  for (const auto& d : devices_) {
    out.push_back(d.counters);
    out.back().online = d.link == device_state::link::online;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ingest_link::diagnostics() const {
  std::vector<std::pair<std::string, std::string>> out{
      {"broker", fmt::format("{}:{}", settings_->host, settings_->port)},
      {"tls", settings_->tls ? "on" : "off"},
      {"connected", connected_ ? "yes" : "no"},
      {"connects", std::to_string(connects_)},
      {"subscriptions", subscriptions_text()},
      {"messages", std::to_string(messages_)},
      {"waiting", std::to_string(inbox_->size())},
      {"dropped_queue_full", std::to_string(queue_dropped_)},
      {"unmatched", std::to_string(unmatched_)},
      {"unreadable_unknown_device", std::to_string(unreadable_unattributed_)},
      {"unknown_devices", std::to_string(unknown_.size())},
      {"unknown_unlisted_messages", std::to_string(unknown_unlisted_)}};
  for (const auto& [key, u] : unknown_) {
    out.emplace_back("unknown " + key.second,
                     fmt::format("profile {} topic {} messages {}", key.first, u.topic, u.messages));
  }
  return out;
}

std::string ingest_link::address_of(const ingest_device_settings& d) {
  if (!d.profile) return d.id;
  const auto& t = d.profile->topic;
  if (!t.capture) return fmt::format("{} id {}", t.filter(), d.id);
  auto levels = t.levels;
  levels[*t.capture] = d.id;
  std::string topic;
  for (const auto& l : levels) topic += (topic.empty() ? "" : "/") + l;
  return topic;
}

std::string ingest_link::subscriptions_text() const {
  std::string out;
  for (const auto& f : filters()) out += (out.empty() ? "" : " ") + f;
  return out;
}

std::set<std::string> ingest_link::filters() const {
  std::set<std::string> out;
  for (const auto* p : profiles_) out.insert(p->topic.filter());
  return out;
}

void ingest_link::connect() {
  if (stopped_ || connected_ || connecting_) return;
  if (profiles_.empty()) {
    spdlog::warn("mqtt bus has no devices bus={} broker={}:{} check=\"add [[devices]] on this bus\"", name_,
                 settings_->host, settings_->port);
    return;
  }
  connecting_ = true;
  auto builder = mqtt::connect_options_builder();
  builder.keep_alive_interval(settings_->keepalive).connect_timeout(5s);
  if (settings_->mqtt5) {
    // Persistent: the broker keeps this client's subscriptions and queues the QoS 1 messages that
    // arrive while it is away, for up to a week (docs/mqtt-ingest.md, "The site broker"). And it
    // never sends a packet over max_packet_bytes: a huge payload is dropped by the broker, not read
    // into this process (where Paho would keep a read buffer of its size for good).
    builder.mqtt_version(MQTTVERSION_5)
        .clean_start(!settings_->persistent_session)
        .properties(
            {{mqtt::property::SESSION_EXPIRY_INTERVAL, settings_->persistent_session ? session_expiry_s : 0},
             {mqtt::property::MAXIMUM_PACKET_SIZE, static_cast<int>(max_packet_bytes)}});
  } else {
    builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(!settings_->persistent_session);
  }
  auto opts = builder.finalize();
  paho::set_login(opts, settings_->username, settings_->password, settings_->tls);
  try {
    client_->connect(opts);
  } catch (const mqtt::exception& e) {
    connecting_ = false;
    on_connect_failed(e.what());
  }
}

void ingest_link::on_connected(bool session_kept) {
  connecting_ = false;
  if (stopped_) return;
  connected_ = true;
  ++connects_;
  bus_back();
  backoff_.reset();
  spdlog::info(
      "mqtt bus connected bus={} broker={}:{} client_id={} tls={} mqtt={} session={} subscriptions=\"{}\"",
      name_, settings_->host, settings_->port, settings_->client_id, settings_->tls ? "on" : "off",
      settings_->mqtt5 ? "5" : "3.1.1",
      !settings_->persistent_session ? "clean"
      : session_kept                 ? "kept"
                                     : "new",
      subscriptions_text());
  // Made again on every connect: a clean session forgot them, and a kept one may predate a reload.
  granted_ = 0;
  for (const auto& f : filters()) {
    try {
      client_->subscribe(f, 1);
    } catch (const mqtt::exception& e) {
      spdlog::error(
          "mqtt bus cannot subscribe bus={} topic={} error=\"{}\" check=\"the broker's ACL for client {}\"",
          name_, f, e.what(), settings_->client_id);
    }
  }
}

void ingest_link::on_connect_failed(const std::string& why) {
  connecting_ = false;
  if (stopped_) return;
  spdlog::warn(
      "mqtt bus connect failed bus={} broker={}:{} tls={} error=\"{}\" check=\"{}\" retry_within_ms={}",
      name_, settings_->host, settings_->port, settings_->tls ? "on" : "off", why,
      fmt::format("{}{}", paho::connect_hint(settings_->tls.has_value()),
                  settings_->mqtt5 ? "; a broker that speaks only MQTT 3.1.1 (mosquitto before 1.6) needs "
                                     "mqtt_version = \"3.1.1\" on this bus"
                                   : ""),
      backoff_.step().count());
  schedule_reconnect();
}

void ingest_link::on_connection_lost(const std::string& why) {
  if (!connected_) return;
  connected_ = false;
  spdlog::warn("mqtt bus connection lost bus={} broker={}:{} cause=\"{}\"", name_, settings_->host,
               settings_->port, why);
  schedule_reconnect();
}

void ingest_link::schedule_reconnect() {
  if (stopped_) return;
  retry_.expires_after(backoff_.next());
  retry_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->connect();
  });
}

asio::awaitable<void> ingest_link::ticks() {
  while (!stopped_) {
    tick_.expires_after(1s);
    boost::system::error_code ec;
    co_await tick_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopped_) co_return;
    on_tick();
  }
}

void ingest_link::on_tick() {
  const auto now = steady::now();

  attribute_drops(now);
  for (auto& d : devices_) {
    if (auto m = d.limiter.release(now)) take(d, *m, {});
    if (d.flooding && now - d.last_drop >= flood_quiet && !d.limiter.holding()) {
      d.flooding = false;
      spdlog::info("mqtt device flood over bus={} device={} dropped={}", name_, d.settings->name,
                   d.flood_dropped);
      d.flood_dropped = 0;
      emit_flag(d, flood_point, 0, clock::now());
    }
    if ((d.link != device_state::link::offline || d.back_from_bus) &&
        now - d.last_seen > d.settings->offline_after) {
      go_offline(d, now);
    }
  }
}

void ingest_link::bus_back() {
  // A sensor could not be heard while the broker was away: its silence counts from now, so that
  // a message due during the outage is no false device_offline.
  const auto reached = steady::now();
  for (auto& d : devices_) {
    if (d.link != device_state::link::offline) d.last_seen = std::max(d.last_seen, reached);
  }
  if (bus_known_ && !bus_down_) return;
  const bool was_down = bus_down_;
  bus_known_ = true;
  bus_down_ = false;
  const auto now = steady::now();
  bus_status status{name_, true, {},           fmt::format("{}:{}", settings_->host, settings_->port),
                    {},    {},   clock::now(), {}};
  for (auto& d : devices_) {
    status.devices.push_back(d.settings->name);
    if (d.offline_with_bus) {
      d.offline_with_bus = false;
      d.back_from_bus = true;
      d.last_seen = now;  // its offline_after runs afresh from now
    }
  }
  if (was_down) spdlog::info("bus online bus={} broker={}", name_, status.address);
  sink_.on_bus_status(status);
}

void ingest_link::bus_down(std::error_code error) {
  if (bus_down_) return;
  bus_down_ = true;
  bus_status status{name_,
                    false,
                    error,
                    fmt::format("{}:{}", settings_->host, settings_->port),
                    "its site broker cannot be reached, so no sensor behind it can be heard",
                    {},
                    clock::now(),
                    "the site broker's power and network, its address and port, and the bus's credentials"};
  for (const auto& d : devices_) status.devices.push_back(d.settings->name);
  spdlog::warn(
      "bus offline bus={} broker={} devices={} check=\"the site broker (see mqtt bus connect failed)\"",
      name_, status.address, status.devices.size());
  sink_.on_bus_status(status);
}

void ingest_link::go_offline(device_state& d, steady::time_point now) {
  d.back_from_bus = false;
  if (!connected_) {
    // Not this sensor's silence: the broker's. Counted offline, one alert for the bus.
    bus_down(make_error(ingest_errc::broker_down));
    d.link = device_state::link::offline;
    d.offline_with_bus = true;
    ++d.counters.consecutive_failures;
    d.counters.last_error = make_error(ingest_errc::broker_down).message();
    sink_.on_device_status({d.settings->name, false, make_error(ingest_errc::broker_down),
                            fmt::format("{} on {}:{}", d.counters.address, settings_->host, settings_->port),
                            clock::now(), true});
    return;
  }
  d.link = device_state::link::offline;
  const auto silent = std::chrono::duration_cast<std::chrono::seconds>(now - d.last_seen).count();
  const auto error = connected_ ? make_error(ingest_errc::silent) : make_error(ingest_errc::broker_down);
  const auto detail =
      fmt::format("{} on {}:{}, silent {} s", d.counters.address, settings_->host, settings_->port, silent);
  d.counters.last_error = error.message();
  ++d.counters.consecutive_failures;
  spdlog::warn(
      "device offline bus={} device={} addr={} silent_s={} offline_after_s={} broker_connected={} "
      "check=\"{}\"",
      name_, d.settings->name, d.counters.address, silent, d.settings->offline_after.count(),
      connected_ ? "yes" : "no",
      connected_ ? "the sensor's battery and radio, its bridge, and that it publishes on that topic"
                 : "the site broker (see mqtt bus connect failed)");
  sink_.on_device_status({d.settings->name, false, error, detail, clock::now()});
}

namespace {

/// The driver the application holds: the state's owner, which stops it when it goes.
class ingest_bus final : public bus_driver {
 public:
  explicit ingest_bus(std::shared_ptr<ingest_link> link) : link_(std::move(link)) {}
  ~ingest_bus() override { link_->stop(); }
  void start() override { link_->start(); }
  void stop() override { link_->stop(); }
  std::vector<device_counters> counters() const override { return link_->counters(); }
  std::vector<std::pair<std::string, std::string>> diagnostics() const override {
    return link_->diagnostics();
  }

 private:
  std::shared_ptr<ingest_link> link_;
};

}  // namespace

std::unique_ptr<bus_driver> make_ingest_bus(asio::any_io_executor executor, std::string name,
                                            std::shared_ptr<const ingest_bus_settings> settings,
                                            reading_sink& sink) {
  return std::make_unique<ingest_bus>(
      std::make_shared<ingest_link>(std::move(executor), std::move(name), std::move(settings), sink));
}

}  // namespace firegate::mqtt_ingest
