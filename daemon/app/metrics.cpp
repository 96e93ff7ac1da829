// The gateway's metrics (docs/metrics.md): what each counter is read from, as prometheus-cpp's metric
// families; its TextSerializer writes Prometheus's text format. Names follow Prometheus's
// conventions (firegate_ prefix, base units, _total on counters), which `promtool check metrics`
// holds them to in the system test.

#include "metrics.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <utility>

namespace firegate {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using labels = std::vector<ClientMetric::Label>;

/// The families of one scrape, in the order first named.
class families {
 public:
  MetricFamily& family(std::string name, std::string help, MetricType type) {
    // By name: at 1,000 devices a scrape adds some 15,000 samples to about 60 families.
    const auto [at, fresh] = index_.try_emplace(name, list_.size());
    if (fresh) list_.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
    return list_[at->second];
  }
  void counter(std::string name, std::string help, labels l, double value) {
    ClientMetric m;
    m.label = std::move(l);
    m.counter.value = value;
    family(std::move(name), std::move(help), MetricType::Counter).metric.push_back(std::move(m));
  }
  void gauge(std::string name, std::string help, labels l, double value) {
    ClientMetric m;
    m.label = std::move(l);
    m.gauge.value = value;
    family(std::move(name), std::move(help), MetricType::Gauge).metric.push_back(std::move(m));
  }
  /// A sum and a count without quantiles: a mean over any window, as Prometheus's rate() of both.
  void summary(std::string name, std::string help, labels l, std::uint64_t count, double sum) {
    ClientMetric m;
    m.label = std::move(l);
    m.summary.sample_count = count;
    m.summary.sample_sum = sum;
    family(std::move(name), std::move(help), MetricType::Summary).metric.push_back(std::move(m));
  }
  void histogram(std::string name, std::string help, labels l, const latency_histogram& h) {
    ClientMetric m;
    m.label = std::move(l);
    m.histogram.sample_count = h.count;
    m.histogram.sample_sum = h.sum;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < latency_histogram::bounds.size(); ++i) {
      cumulative += h.counts[i];
      m.histogram.bucket.push_back({cumulative, latency_histogram::bounds[i]});
    }
    m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
    family(std::move(name), std::move(help), MetricType::Histogram).metric.push_back(std::move(m));
  }
  std::string text() const { return prometheus::TextSerializer().Serialize(list_); }

 private:
  std::vector<MetricFamily> list_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

double seconds(clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string_view lane_name(std::size_t l) {
  static constexpr std::array<std::string_view, 3> names{"alarm", "event", "telemetry"};
  return names[l];
}

/// The GB/T 26875.3 link's counters, from its diagnostics: key, metric, help.
struct gb_counter {
  const char* key;
  const char* name;
  const char* help;
};
constexpr gb_counter gb_counters[] = {
    {"sent", "firegate_gb26875_frames_sent_total", "Frames sent to the centre (first sends)."},
    {"confirmed", "firegate_gb26875_frames_confirmed_total", "Frames the centre confirmed."},
    {"resent", "firegate_gb26875_frames_resent_total", "Frames sent again for want of a confirm."},
    {"link_faults", "firegate_gb26875_link_faults_total",
     "Times the link counted as failed (no confirm after every retry)."},
    {"denied_by_centre", "firegate_gb26875_denied_by_centre_total", "Frames the centre denied."},
    {"set_aside", "firegate_gb26875_set_aside_total", "Frames set aside after a second deny."},
    {"denied_by_us", "firegate_gb26875_denied_by_gateway_total",
     "Frames from the centre the gateway denied."},
    {"bad_frames", "firegate_gb26875_bad_frames_total", "Malformed frames received from the centre."},
    {"skipped_bytes", "firegate_gb26875_skipped_bytes_total",
     "Bytes received that were not part of a frame."},
    {"requests", "firegate_gb26875_requests_total", "Requests the centre made (queries, clock, inspection)."},
};

}  // namespace

bool gateway_metrics::timed(const event& e) {
  return (e.kind == event_kind::fire_alarm || e.kind == event_kind::supervisory_alarm) && !e.test;
}

void gateway_metrics::raised(const event& e, clock::time_point now) {
  const auto k = static_cast<std::size_t>(e.kind);
  if (k < raised_by_kind_.size()) ++raised_by_kind_[k];
  if (timed(e)) stages_[static_cast<std::size_t>(stage::decided)].observe(now - e.time);
}

void gateway_metrics::stored(const event& e, clock::time_point now) {
  if (timed(e)) stages_[static_cast<std::size_t>(stage::stored)].observe(now - e.time);
}

std::string gateway_metrics::text(const scrape& s) const {
  families f;
  const auto& h = s.health;
  f.gauge("firegate_info", "The gateway: its id, site, version and the configuration's revision (always 1).",
          {{"gateway", s.site.gateway.id},
           {"site", s.site.site.id},
           {"version", FIREGATE_VERSION},
           {"revision", h.config.revision}},
          1);
  f.gauge("firegate_start_time_seconds", "When firegated started (Unix time).", {}, seconds(h.started));
  f.gauge("firegate_config_loaded_time_seconds", "When the configuration in force was applied (Unix time).",
          {}, seconds(h.config.loaded));
  f.gauge("firegate_config_rejected", "1 while the last reload was refused and an older configuration runs.",
          {}, h.config.rejected ? 1 : 0);
  f.counter("firegate_config_reloads_total", "Reloads (SIGHUP) by outcome.", {{"outcome", "applied"}},
            static_cast<double>(reloads_applied_));
  f.counter("firegate_config_reloads_total", "Reloads (SIGHUP) by outcome.", {{"outcome", "refused"}},
            static_cast<double>(reloads_refused_));

  // The system clock (docs/clock.md): whether alarm times can be trusted.
  if (h.wall_clock.synchronised) {
    f.gauge("firegate_clock_synchronised",
            "1 while the system clock is synchronised (as timedatectl shows it).", {},
            *h.wall_clock.synchronised ? 1 : 0);
    if (h.wall_clock.max_error_us >= 0) {
      f.gauge("firegate_clock_max_error_seconds", "The kernel's bound on the system clock's error.", {},
              static_cast<double>(h.wall_clock.max_error_us) / 1e6);
    }
  }
  if (h.wall_clock.platform_offset_ms) {
    f.gauge("firegate_clock_platform_offset_seconds",
            "The platform's clock minus the box's, as the GB/T 26875.3 centre's last clock synchronisation "
            "measured it (to the second).",
            {}, static_cast<double>(*h.wall_clock.platform_offset_ms) / 1000.0);
  }

  // Alarms open now, by category, and every event raised since the start, by type.
  const auto& a = h.alarms;
  const char* open_help = "Alarms open now by category (test alarms apart).";
  f.gauge("firegate_alarms_open", open_help, {{"category", "fire"}}, static_cast<double>(a.fire));
  f.gauge("firegate_alarms_open", open_help, {{"category", "supervisory"}},
          static_cast<double>(a.supervisory));
  f.gauge("firegate_alarms_open", open_help, {{"category", "fault"}}, static_cast<double>(a.fault));
  f.gauge("firegate_alarms_unacknowledged", "Fire and supervisory alarms open and not yet acknowledged.", {},
          static_cast<double>(a.unacknowledged));
  f.gauge("firegate_alarms_test_open", "Test alarms open (devices in test mode, the self-test).", {},
          static_cast<double>(a.test));
  f.gauge("firegate_devices_shielded", "Devices whose alarms are shielded now.", {},
          static_cast<double>(a.shielded));
  f.gauge("firegate_devices_in_test_mode", "Devices in test mode now.", {},
          static_cast<double>(a.in_test_mode));
  for (std::size_t k = 0; k <= static_cast<std::size_t>(last_event_kind); ++k) {
    const auto kind = static_cast<event_kind>(k);
    f.counter("firegate_events_total", "Events raised since the start, by type and category.",
              {{"type", std::string(to_string(kind))}, {"category", std::string(category_of(kind))}},
              static_cast<double>(raised_by_kind_[k]));
  }
  const char* stage_help =
      "Seconds from a fire or supervisory alarm's reading to a stage of its path: decided (raised by the "
      "rules), stored (committed to the database).";
  f.histogram("firegate_alarm_latency_seconds", stage_help, {{"stage", "decided"}},
              stages_[static_cast<std::size_t>(stage::decided)]);
  f.histogram("firegate_alarm_latency_seconds", stage_help, {{"stage", "stored"}},
              stages_[static_cast<std::size_t>(stage::stored)]);
  for (const auto& u : s.uplinks) {
    if (const auto* hist = u.link->alarm_latency()) {
      f.histogram("firegate_alarm_delivered_seconds",
                  "Seconds from a fire or supervisory alarm's reading to its acknowledgement by the uplink's "
                  "peer (MQTT PUBACK, the GB/T 26875.3 centre's confirm).",
                  {{"uplink", std::string(u.name)}}, *hist);
    }
  }

  // Buses and devices.
  std::size_t total = 0, online = 0;
  for (std::size_t i = 0; i < s.site.buses.size() && i < s.drivers.size(); ++i) {
    const auto& bus = s.site.buses[i];
    const auto counters = s.drivers[i]->counters();
    std::size_t up = 0;
    for (const auto& c : counters) {
      up += c.online ? 1 : 0;
      const labels l{{"bus", bus.name}, {"device", c.device}};
      const auto count = [&](const char* name, const char* help, std::uint64_t v) {
        f.counter(name, help, l, static_cast<double>(v));
      };
      f.gauge("firegate_device_online", "1 while the device answers (0 until it first does).", l,
              c.online ? 1 : 0);
      count("firegate_device_polls_total", "Poll cycles attempted (alarm group and full).", c.polls);
      count("firegate_device_requests_total", "Requests sent, writes and read-backs included.", c.requests);
      count("firegate_device_responses_total", "Normal responses that passed every check.", c.responses);
      count("firegate_device_timeouts_total", "Requests with no answer in time.", c.timeouts);
      count("firegate_device_crc_errors_total", "Answers with a bad CRC (Modbus RTU).", c.crc_errors);
      count("firegate_device_exceptions_total", "Modbus exception responses.", c.exceptions);
      count("firegate_device_malformed_total", "Answers with bad framing, byte counts, echoes or ids.",
            c.malformed);
      count("firegate_device_connection_errors_total",
            "The bus could not be opened, or closed under a request.", c.connection_errors);
      count("firegate_device_writes_total", "Writes (linkage, firegatectl).", c.writes);
      count("firegate_device_write_failures_total", "Writes that failed or did not read back.",
            c.write_failures);
      if (bus.driver == "mqtt") {
        count("firegate_device_messages_total", "Messages received from the device (MQTT ingest).",
              c.messages);
        count("firegate_device_duplicates_total", "Repeated or late messages dropped (MQTT ingest).",
              c.duplicates);
        count("firegate_device_rate_limited_total", "Messages over the device's rate limit (MQTT ingest).",
              c.rate_limited);
      }
      f.summary("firegate_device_response_seconds", "Request sent to response checked.", l, c.responses,
                std::chrono::duration<double>(c.total_response_time).count());
      f.gauge("firegate_device_last_good_time_seconds",
              "When the device last answered a whole poll (Unix time; 0: never).", l,
              c.last_good ? seconds(*c.last_good) : 0);
    }
    total += counters.size();
    online += up;
    f.gauge("firegate_bus_devices", "Devices configured on the bus.",
            {{"bus", bus.name}, {"driver", bus.driver}}, static_cast<double>(counters.size()));
    f.gauge("firegate_bus_devices_online", "Devices on the bus answering now.",
            {{"bus", bus.name}, {"driver", bus.driver}}, static_cast<double>(up));
  }

  // The store.
  f.gauge("firegate_store_faulty", "1 while the database fails (or one in memory stands in for it).", {},
          h.storage == "ok" ? 0 : 1);
  f.counter("firegate_store_faults_total", "Storage faults raised since the start.", {},
            static_cast<double>(h.storage_faults));
  f.gauge("firegate_store_max_bytes", "The database's size limit (storage.max_size_mb).", {},
          static_cast<double>(s.site.storage.max_size_mb << 20));
  f.gauge("firegate_store_readable",
          "1 when this scrape could read the store (its size, evictions and the outbox's backlog follow); "
          "0 when it could not, and those are left out.",
          {}, s.store.error.empty() ? 1 : 0);
  if (s.store.used_bytes) {
    f.gauge("firegate_store_used_bytes", "Bytes of the database in use.", {},
            static_cast<double>(*s.store.used_bytes));
  }
  if (s.store.evicted) {
    const auto& e = *s.store.evicted;
    f.counter("firegate_store_evicted_readings_total",
              "Readings removed to stay within the store's bounds, since the database was made.", {},
              static_cast<double>(e.readings));
    f.counter("firegate_store_evicted_telemetry_total",
              "Undelivered telemetry messages removed among them, since the database was made.", {},
              static_cast<double>(e.telemetry_messages));
    f.counter("firegate_store_evicted_events_total",
              "Delivered events removed past the maximum age, since the database was made.", {},
              static_cast<double>(e.events));
  }

  // The uplinks: link, acknowledgements, and what each has still to deliver.
  for (const auto& u : s.uplinks) {
    const labels l{{"uplink", std::string(u.name)}};
    f.gauge("firegate_uplink_connected", "1 while the uplink is connected.", l, u.link->connected() ? 1 : 0);
    f.counter("firegate_uplink_connects_total", "Connections made since the start.", l,
              static_cast<double>(u.link->connects()));
    f.counter("firegate_uplink_ack_timeouts_total",
              "Connections dropped because the peer acknowledged nothing in time.", l,
              static_cast<double>(u.link->ack_timeouts()));
    if (const auto* hist = u.link->ack_latency()) {
      f.histogram(
          "firegate_uplink_ack_seconds",
          "Seconds from a message's send to its peer's acknowledgement (PUBACK, the centre's confirm).", l,
          *hist);
    }
    if (!u.backlog) continue;
    for (std::size_t lane = 0; lane < 3; ++lane) {
      const labels ll{{"uplink", std::string(u.name)}, {"lane", std::string(lane_name(lane))}};
      f.gauge("firegate_outbox_waiting", "Stored items the uplink has still to deliver, by lane.", ll,
              static_cast<double>(u.backlog->waiting[lane]));
      const auto& oldest = u.backlog->oldest[lane];
      f.gauge("firegate_outbox_oldest_age_seconds",
              "Age of the oldest item the uplink has still to deliver, by lane (0: none waits).", ll,
              oldest ? std::max(0.0, std::chrono::duration<double>(h.time - *oldest).count()) : 0.0);
    }
  }
  if (s.gb26875 != nullptr) {
    const auto& gb = *s.gb26875;
    f.gauge("firegate_gb26875_link_normal",
            "1 while the link to the centre is normal (connected and confirming).", {},
            gb.value("link", "") == "normal" ? 1 : 0);
    for (const auto& c : gb_counters) {
      f.counter(c.name, c.help, {}, gb.value(c.key, 0.0));
    }
    f.gauge("firegate_gb26875_clock_offset_seconds",
            "The centre's clock less the gateway's, at its last synchronisation.", {},
            gb.value("clock_offset_ms", 0.0) / 1000.0);
  }
  f.gauge("firegate_devices", "Devices configured.", {}, static_cast<double>(total));
  f.gauge("firegate_devices_online", "Devices answering now.", {}, static_cast<double>(online));
  return f.text();
}

}  // namespace firegate
