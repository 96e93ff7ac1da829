// The MQTT ingest bus's messages: from the inbox Paho's thread fills to each device's readings, with
// its rate limit, its duplicates and late messages, unknown devices and unreadable payloads.
// The connection and the ticks: ingest_bus.cpp.

#include "ingest_link.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace firegate::mqtt_ingest {

void ingest_link::drain() {
  if (stopped_) return;
  bool more = false;
  auto batch = inbox_->take(batch_size, more, true);
  for (auto& m : batch) handle(std::move(m));
  if (more) {
    asio::post(executor_, [self = shared_from_this()] { self->drain(); });
  } else if (!batch.empty()) {
    // Held: what comes in the next drain_hold is taken then, in one turn (a take that finds
    // nothing ends the hold, and the next message wakes the loop again).
    hold_.expires_after(drain_hold);
    hold_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->drain();
    });
  }
}

void ingest_link::handle(inbound m) {
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

void ingest_link::note_unknown(const ingest_profile& p, const std::string& id, const std::string& topic) {
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

void ingest_link::arrive(device_state& d, inbound& m, std::optional<decoded_message> decoded) {
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

void ingest_link::flood_drop(device_state& d, std::uint64_t n, steady::time_point now) {
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

void ingest_link::emit_flag(device_state& d, std::string_view point, double value, clock::time_point time) {
  reading r;
  r.device = d.settings->name;
  r.point = std::string(point);
  r.value = value;
  r.time = time;
  sink_.on_readings(std::span(&r, 1));
}

void ingest_link::take(device_state& d, const inbound& m, std::optional<decoded_message> decoded) {
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

void ingest_link::unreadable(device_state& d, const inbound& m, const std::vector<std::string>& problems) {
  ++d.counters.malformed;
  d.counters.last_error = problems.empty() ? std::string() : problems.front();
  log_problems(d, m, problems);
  if (!d.unreadable) {
    d.unreadable = true;
    emit_flag(d, unreadable_point, 1, m.time);
  }
}

void ingest_link::log_problems(device_state& d, const inbound& m, const std::vector<std::string>& problems) {
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

void ingest_link::seen(device_state& d) {
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

void ingest_link::attribute_drops(steady::time_point now) {
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

}  // namespace firegate::mqtt_ingest
