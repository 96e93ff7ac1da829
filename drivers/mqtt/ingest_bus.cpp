// The MQTT ingest bus: a Paho client on the site broker. Paho's callback thread only queues each
// message in the inbox (bounded, fair between topics) and wakes the loop; the loop decodes them in
// batches, so a flood never holds the loop for long. Per device: a token-bucket rate limit (the
// excess dropped, the latest message kept and taken when the device is within its rate again),
// duplicates and late messages dropped by the profile's counter, last-seen offline detection.

#include "domain/backoff.hpp"
#include "inbox.hpp"
#include "mqtt_client/loop_client.hpp"
#include "mqtt_client/paho_support.hpp"
#include "mqtt_driver.hpp"
#include "rate_limiter.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>
#include <random>
#include <set>

namespace firegate::mqtt_ingest {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

enum class ingest_errc { silent = 1, broker_down = 2 };

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

std::error_code make_error(ingest_errc e) {
  static const ingest_category category;
  return {static_cast<int>(e), category};
}

/// A flood ends when the device has stayed within its rate this long.
constexpr auto flood_quiet = 10s;
/// Messages decoded in one turn of the loop before it lets other work run.
constexpr std::size_t batch_size = 256;
/// Unknown device ids remembered for firegatectl (the first ones; the rest are counted).
constexpr std::size_t unknown_kept = 32;

struct device_state {
  const ingest_device_settings* settings{nullptr};
  device_counters counters;
  enum class link { unknown, online, offline } link{link::unknown};
  steady::time_point last_seen;  ///< the last live message, or when the bus started
  std::optional<double> last_sequence;
  rate_limiter<inbound> limiter{1, 1, {}};
  bool flooding{false};
  std::uint64_t flood_dropped{0};
  steady::time_point last_drop;
  bool unreadable{false};
  steady::time_point last_problem_log;
  /// Offline with the bus (the site broker unreachable): its bus's fault covers it. Cleared by a
  /// message; once the broker is back its silence counts afresh and is then its own.
  bool offline_with_bus{false};
  bool back_from_bus{false};  ///< went offline with the bus, which is back: still silent, told on its own
};

struct unknown_device {
  std::string profile;
  std::string topic;
  std::uint64_t messages{0};
};

/// The largest packet an MQTT 5 broker may send: a payload at the limit with a long topic and its
/// properties. Larger payloads up to it are refused here as too large; beyond it the broker drops them.
constexpr std::size_t max_packet_bytes = max_payload_bytes + 16 * 1024;
/// How long an MQTT 5 broker keeps a persistent session for an absent firegated.
constexpr int session_expiry_s = 7 * 24 * 3600;

/// The bus's state and work, shared by what is under way on the loop (the ticks, a reconnect's wait,
/// a drain's next turn), each holding it until it ends: a stop cancels them, and the state goes with
/// the last, as a Modbus bus's does. No handler of Paho's reaches it once it goes (paho::loop_client).
class ingest_link final : public std::enable_shared_from_this<ingest_link> {
 public:
  ingest_link(asio::any_io_executor ex, std::string name, std::shared_ptr<const ingest_bus_settings> s,
              reading_sink& sink)
      : executor_(std::move(ex)),
        name_(std::move(name)),
        settings_(std::move(s)),
        sink_(sink),
        tick_(executor_),
        retry_(executor_),
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
      if (ok) return;
      spdlog::error(
          "mqtt bus cannot subscribe bus={} topic={} error=\"{}\" check=\"the broker's ACL for client {}\"",
          name_, filter, why, settings_->client_id);
    };
    // Paho's thread: only the inbox, which has its own lock; the loop is woken to drain it.
    client_ = std::make_unique<paho::loop_client>(
        executor_,
        fmt::format("{}://{}:{}", settings_->tls ? "ssl" : "tcp", settings_->host, settings_->port),
        settings_->client_id, settings_->mqtt5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1, std::move(h),
        [box = inbox_](const mqtt::message& m) {
          const auto& payload = m.get_payload_ref();
          return box->push(m.get_topic(), std::string_view(payload.data(), payload.size()), m.is_retained(),
                           clock::now());
        },
        [this] { drain(); });
  }

  void start() {
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

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    tick_.cancel();
    retry_.cancel();
    // A site broker that stopped answering holds a disconnect for its timeout: never the loop.
    client_->retire(connected_ || connecting_ ? std::optional(std::chrono::milliseconds(0)) : std::nullopt);
    connected_ = false;
  }

  std::vector<device_counters> counters() const {
    std::vector<device_counters> out;
    for (const auto& d : devices_) {
      out.push_back(d.counters);
      out.back().online = d.link == device_state::link::online;
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> diagnostics() const {
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

 private:
  static std::string address_of(const ingest_device_settings& d) {
    if (!d.profile) return d.id;
    const auto& t = d.profile->topic;
    if (!t.capture) return fmt::format("{} id {}", t.filter(), d.id);
    auto levels = t.levels;
    levels[*t.capture] = d.id;
    std::string topic;
    for (const auto& l : levels) topic += (topic.empty() ? "" : "/") + l;
    return topic;
  }

  std::string subscriptions_text() const {
    std::string out;
    for (const auto& f : filters()) out += (out.empty() ? "" : " ") + f;
    return out;
  }

  std::set<std::string> filters() const {
    std::set<std::string> out;
    for (const auto* p : profiles_) out.insert(p->topic.filter());
    return out;
  }

  // --- the connection ---------------------------------------------------------------------------

  void connect() {
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
          .properties({{mqtt::property::SESSION_EXPIRY_INTERVAL,
                        settings_->persistent_session ? session_expiry_s : 0},
                       {mqtt::property::MAXIMUM_PACKET_SIZE, static_cast<int>(max_packet_bytes)}});
    } else {
      builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(!settings_->persistent_session);
    }
    auto opts = builder.finalize();
    if (!settings_->username.empty()) opts.set_user_name(settings_->username);
    if (!settings_->password.empty()) opts.set_password(settings_->password);
    if (settings_->tls) opts.set_ssl(paho::ssl_options(*settings_->tls));
    try {
      client_->connect(opts);
    } catch (const mqtt::exception& e) {
      connecting_ = false;
      on_connect_failed(e.what());
    }
  }

  /// `session_kept`: the broker still had this client's session (what arrived meanwhile follows).
  void on_connected(bool session_kept) {
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

  void on_connect_failed(const std::string& why) {
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

  void on_connection_lost(const std::string& why) {
    if (!connected_) return;
    connected_ = false;
    spdlog::warn("mqtt bus connection lost bus={} broker={}:{} cause=\"{}\"", name_, settings_->host,
                 settings_->port, why);
    schedule_reconnect();
  }

  void schedule_reconnect() {
    if (stopped_) return;
    retry_.expires_after(backoff_.next());
    retry_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->connect();
    });
  }

  // --- messages ---------------------------------------------------------------------------------

  void drain() {
    if (stopped_) return;
    bool more = false;
    auto batch = inbox_->take(batch_size, more);
    for (auto& m : batch) handle(std::move(m));
    if (more) {
      asio::post(executor_, [self = shared_from_this()] { self->drain(); });
    }
  }

  void handle(inbound m) {
    ++messages_;
    bool matched = false;
    std::string why;
    const ingest_profile* named = nullptr;
    std::string named_id;
    for (const auto* p : profiles_) {
      auto id = match_topic(p->topic, m.topic);
      if (!id) continue;
      matched = true;
      if (p->topic.capture) {
        if (auto it = by_id_.find({p->name, *id}); it != by_id_.end())
          return arrive(devices_[it->second], m, {});
        if (!named) named = p, named_id = *id;
        continue;
      }
      // The id is in the payload: decode to know whose message it is.
      if (m.payload.empty() && m.size > max_payload_bytes) {
        why = fmt::format("{} bytes; at most {} are taken", m.size, max_payload_bytes);
        continue;
      }
      std::string error;
      auto decoded = decode(*p, m.topic, m.payload, m.time, error);
      if (!decoded) {
        why = error;
        continue;
      }
      if (auto it = by_id_.find({p->name, decoded->device_id}); it != by_id_.end()) {
        return arrive(devices_[it->second], m, std::move(decoded));
      }
      if (!named) named = p, named_id = decoded->device_id;
    }
    if (!matched) {
      ++unmatched_;
      return;
    }
    if (named) return note_unknown(*named, named_id, m.topic);
    ++unreadable_unattributed_;
    if (steady::now() - last_unattributed_log_ >= 10s) {
      last_unattributed_log_ = steady::now();
      spdlog::warn(
          "mqtt message unreadable bus={} topic={} bytes={} error=\"{}\" total={} check=\"the sender of "
          "this topic: its payload does not fit the profile\"",
          name_, m.topic, m.size, why, unreadable_unattributed_);
    }
  }

  void note_unknown(const ingest_profile& p, const std::string& id, const std::string& topic) {
    const auto key = std::make_pair(p.name, id);
    auto it = unknown_.find(key);
    if (it == unknown_.end() && unknown_.size() >= unknown_kept) {
      // Past the ids listed: counted, and said at most every 10 s (a publisher inventing ids).
      ++unknown_unlisted_;
      if (steady::now() - last_unlisted_log_ >= 10s) {
        last_unlisted_log_ = steady::now();
        spdlog::warn(
            "mqtt messages from unknown devices bus={} unlisted={} last_id={} topic={} check=\"who "
            "publishes on these topics; the site broker's ACL can stop them\"",
            name_, unknown_unlisted_, id, topic);
      }
      return;
    }
    if (it == unknown_.end()) {
      spdlog::warn(
          "mqtt message from an unknown device bus={} profile={} id={} topic={} check=\"if it is one of "
          "this site's, add a [[devices]] with bus = \\\"{}\\\", profile = \\\"{}\\\", id = \\\"{}\\\"\"",
          name_, p.name, id, topic, name_, p.name, id);
      if (unknown_.size() >= unknown_kept) return;
      it = unknown_.emplace(key, unknown_device{p.name, topic, 0}).first;
    }
    ++it->second.messages;
    it->second.topic = topic;
  }

  /// A message of a configured device: through its rate limit, then taken.
  void arrive(device_state& d, inbound& m, std::optional<decoded_message> decoded) {
    ++d.counters.messages;
    const auto now = steady::now();
    auto within = d.limiter.arrive(std::move(m), now);
    if (!within) {
      // Over its rate: dropped, but the latest message is held and taken when the device is within
      // its rate again, so the state it last reported is never lost.
      ++d.counters.rate_limited;
      flood_drop(d, 1, now);
      return;
    }
    take(d, *within, std::move(decoded));
  }

  void flood_drop(device_state& d, std::uint64_t n, steady::time_point now) {
    d.last_drop = now;
    d.flood_dropped += n;
    if (d.flooding) return;
    d.flooding = true;
    spdlog::warn(
        "mqtt device flooding bus={} device={} topic={} max_rate={} burst={} action=\"excess dropped, "
        "latest state kept\" check=\"the sensor or its bridge: it publishes far more often than it should\"",
        name_, d.settings->name, d.counters.address, settings_->max_rate, settings_->burst);
    emit_flag(d, flood_point, 1, clock::now());
  }

  void emit_flag(device_state& d, std::string_view point, double value, clock::time_point time) {
    reading r;
    r.device = d.settings->name;
    r.point = std::string(point);
    r.value = value;
    r.time = time;
    sink_.on_readings(std::span(&r, 1));
  }

  /// Decodes (unless done) and reports a message's readings.
  void take(device_state& d, const inbound& m, std::optional<decoded_message> decoded) {
    if (!m.retained) seen(d);
    if (!decoded) {
      std::string error;
      if (m.payload.empty() && m.size > max_payload_bytes) {
        error = fmt::format("{} bytes; at most {} are taken", m.size, max_payload_bytes);
      } else {
        decoded = decode(*d.settings->profile, m.topic, m.payload, m.time, error);
      }
      if (!decoded) return unreadable(d, m, {error});
    }
    if (decoded->sequence && d.last_sequence) {
      const auto seq = *decoded->sequence;
      const auto last = *d.last_sequence;
      if (seq <= last && last - seq <= d.settings->profile->sequence_window) {
        ++d.counters.duplicates;
        spdlog::debug("mqtt message repeated or late bus={} device={} sequence={} last={}", name_,
                      d.settings->name, seq, last);
        return;
      }
      if (seq < last) {
        spdlog::info("mqtt device restarted its counter bus={} device={} sequence={} last={}", name_,
                     d.settings->name, seq, last);
      }
    }
    if (decoded->sequence) d.last_sequence = decoded->sequence;
    auto& readings = decoded->readings;
    const bool bad =
        std::any_of(readings.begin(), readings.end(), [](const reading& r) { return r.q == quality::bad; });
    for (auto& r : readings) r.device = d.settings->name;
    if (bad) {
      unreadable(d, m, decoded->problems);
    } else {
      if (!decoded->problems.empty()) log_problems(d, m, decoded->problems);
      if (d.unreadable) {
        d.unreadable = false;
        spdlog::info("mqtt device readable again bus={} device={}", name_, d.settings->name);
        readings.push_back({d.settings->name, std::string(unreadable_point), 0, {}, quality::good, m.time});
      }
    }
    d.counters.last_good = m.time;
    if (!readings.empty()) sink_.on_readings(readings);
  }

  /// A message of a known device that cannot be read at all, or has fields of the wrong type (those
  /// readings already marked bad).
  void unreadable(device_state& d, const inbound& m, const std::vector<std::string>& problems) {
    ++d.counters.malformed;
    d.counters.last_error = problems.empty() ? std::string() : problems.front();
    log_problems(d, m, problems);
    if (!d.unreadable) {
      d.unreadable = true;
      emit_flag(d, unreadable_point, 1, m.time);
    }
  }

  void log_problems(device_state& d, const inbound& m, const std::vector<std::string>& problems) {
    const auto now = steady::now();
    if (now - d.last_problem_log < 60s) return;  // one line a minute a device: a broken sensor is one fault
    d.last_problem_log = now;
    std::string text;
    for (const auto& p : problems) text += (text.empty() ? "" : "; ") + p;
    spdlog::warn(
        "mqtt message problem bus={} device={} topic={} bytes={} problem=\"{}\" check=\"the sensor's "
        "firmware and its profile {}\"",
        name_, d.settings->name, m.topic, m.size, text, d.settings->profile->name);
  }

  void seen(device_state& d) {
    d.last_seen = steady::now();
    d.back_from_bus = false;
    d.offline_with_bus = false;
    if (d.link == device_state::link::online) return;
    const bool was_offline = d.link == device_state::link::offline;
    d.link = device_state::link::online;
    d.counters.consecutive_failures = 0;
    // Only a recovery is reported, as the Modbus driver does: the application counts offline
    // devices by these reports, so a first message must not count as one coming back.
    if (!was_offline) return;
    spdlog::info("device online bus={} device={} addr={}", name_, d.settings->name, d.counters.address);
    sink_.on_device_status({d.settings->name, true, {}, d.counters.address, clock::now()});
  }

  // --- once a second ----------------------------------------------------------------------------

  /// Once a second until the stop: silent devices, floods that ended.
  asio::awaitable<void> ticks() {
    while (!stopped_) {
      tick_.expires_after(1s);
      boost::system::error_code ec;
      co_await tick_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || stopped_) co_return;
      on_tick();
    }
  }

  void on_tick() {
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

  /// The broker answers: a bus fault of it ends (one restored from before a restart too), and the
  /// devices that went offline with it get their offline_after afresh from now.
  void bus_back() {
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

  /// The site broker unreachable when a device's silence ran out: one fault for the bus, and its
  /// devices go offline with it as their silence runs out.
  void bus_down(std::error_code error) {
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

  void go_offline(device_state& d, steady::time_point now) {
    d.back_from_bus = false;
    if (!connected_) {
      // Not this sensor's silence: the broker's. Counted offline, one alert for the bus.
      bus_down(make_error(ingest_errc::broker_down));
      d.link = device_state::link::offline;
      d.offline_with_bus = true;
      ++d.counters.consecutive_failures;
      d.counters.last_error = make_error(ingest_errc::broker_down).message();
      sink_.on_device_status(
          {d.settings->name, false, make_error(ingest_errc::broker_down),
           fmt::format("{} on {}:{}", d.counters.address, settings_->host, settings_->port), clock::now(),
           true});
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

  /// Messages the inbox refused (its share for a topic full): counted on the device the topic names.
  void attribute_drops(steady::time_point now) {
    for (const auto& [topic, n] : inbox_->take_drops()) {
      device_state* owner = nullptr;
      for (const auto* p : profiles_) {
        if (!p->topic.capture) continue;
        if (auto id = match_topic(p->topic, topic)) {
          if (auto it = by_id_.find({p->name, *id}); it != by_id_.end()) owner = &devices_[it->second];
          break;
        }
      }
      if (owner) {
        owner->counters.messages += n;
        owner->counters.rate_limited += n;
        flood_drop(*owner, n, now);
      } else {
        queue_dropped_ += n;
        spdlog::warn(
            "mqtt messages dropped bus={} topic={} count={} reason=\"the queue's share for this topic is "
            "full\" check=\"who publishes on {} so fast\"",
            name_, topic.empty() ? "(many)" : topic, n, topic.empty() ? "these topics" : topic);
      }
    }
  }

  asio::any_io_executor executor_;
  std::string name_;
  std::shared_ptr<const ingest_bus_settings> settings_;
  reading_sink& sink_;
  asio::steady_timer tick_;
  asio::steady_timer retry_;
  std::shared_ptr<inbox> inbox_;
  std::vector<device_state> devices_;
  std::map<std::pair<std::string, std::string>, std::size_t> by_id_;  ///< (profile, id) → devices_
  std::vector<const ingest_profile*> profiles_;                       ///< those the devices use
  std::map<std::pair<std::string, std::string>, unknown_device> unknown_;
  std::uint64_t unknown_unlisted_{0};  ///< messages of unknown ids past the first unknown_kept
  steady::time_point last_unlisted_log_{};
  std::uint64_t messages_{0}, unmatched_{0}, unreadable_unattributed_{0}, queue_dropped_{0};
  steady::time_point last_unattributed_log_{};
  steady::time_point started_{};
  bool stopped_{false}, connected_{false}, connecting_{false};
  bool bus_down_{false};   ///< a bus_offline has been told and not yet ended
  bool bus_known_{false};  ///< the broker has been reached since the start
  std::size_t connects_{0};
  backoff backoff_{500ms, 30s};  ///< domain/backoff.hpp
  /// The site broker's connection: Paho's outcomes come back as handlers on the loop, none after the
  /// bus goes. Declared last, so that it goes first.
  std::unique_ptr<paho::loop_client> client_;
};

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
