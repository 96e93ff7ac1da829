// The application's side that faces its storage: the flush of readings, the bounds, and what a
// failing or damaged database does to the platform's view (storage_fault, storage_recovery,
// storage_eviction: docs/storage.md). Split from application.cpp.

#include "application.hpp"

#include "domain/event_record.hpp"

#include "uplink/mqtt/payloads.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <utility>

namespace firegate {
namespace asio = boost::asio;

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
  // Telemetry items only for the MQTT uplink.
  const auto topic =
      cfg_.mqtt.telemetry && !cfg_.mqtt.host.empty() ? topic_for(cfg_, "telemetry") : std::string();
  // While a storage fault is open, a write is not enough to end it: the outbox must read too.
  const bool verify_reads = storage_failing_;
  store_->post([this, batch = std::move(batch_), topic, max_polls = cfg_.mqtt.telemetry_batch,
                verify_reads](store& s) mutable {
    std::vector<outbox_item> items;
    try {
      // Offered with the readings at hand, so that live telemetry goes out without being read back
      // from the database (the uplink writes its message); a backlog is read back by the uplink.
      for (const auto& q : s.append_telemetry(batch, topic, max_polls)) {
        const auto polls = std::span(batch).subspan(q.first, q.count);  // each reading in one item
        outbox_item item{q.id, lane::telemetry, topic, {}, {}, {}};
        // Only what the points' report strategies send; every reading is stored.
        item.readings.reserve(static_cast<std::size_t>(
            std::count_if(polls.begin(), polls.end(), [](const reading& r) { return r.reported; })));
        for (auto& r : polls) {
          if (r.reported) item.readings.push_back(std::move(r));
        }
        items.push_back(std::move(item));
      }
    } catch (const store_error& e) {
      // Kept for the next flush, within bounds: the oldest readings go first when storage stays down.
      asio::post(io_, [this, batch = std::move(batch), error = std::string(e.what()),
                       damage = s.damaged()]() mutable {
        storage_failed(error, "readings", damage);
        batch.insert(batch.end(), std::make_move_iterator(batch_.begin()),
                     std::make_move_iterator(batch_.end()));
        batch_ = std::move(batch);
        if (batch_.size() > 2 * max_batch) {
          const auto dropped = batch_.size() - max_batch;
          batch_.erase(batch_.begin(), batch_.begin() + static_cast<std::ptrdiff_t>(dropped));
          spdlog::error("readings dropped count={} reason=\"storage failing; check the disk\"", dropped);
        }
      });
      return;
    }
    std::string read_error;
    if (verify_reads) {
      try {
        s.check_outbox_readable();
      } catch (const store_error& e) {
        read_error = e.what();
      }
    }
    batch.clear();  // its memory goes back to the loop for the next batch
    asio::post(io_, [this, items = std::move(items), read_error, verify_reads, damage = s.damaged(),
                     spare = std::move(batch)]() mutable {
      // Not one grown while storage failed (up to max_batch): that memory goes back.
      if (spare.capacity() <= 2 * flush_at && spare.capacity() > spare_batch_.capacity()) {
        spare_batch_ = std::move(spare);
      }
      // Only a flush that also read the outbox back ends a fault: one posted before the fault was
      // known did not.
      if (!read_error.empty()) {
        storage_failed(read_error, "outbox read", damage);
      } else if (verify_reads) {
        storage_succeeded();
      }
      for (auto& item : items) offer_to_uplinks(std::move(item), false);
    });
  });
  batch_ = std::move(spare_batch_);  // empty, with the memory of an earlier batch when one came back
  spare_batch_ = {};
}

void application::enforce_bounds() {
  last_bounds_check_ = std::chrono::steady_clock::now();
  store_->post([this](store& s) {
    try {
      auto e = s.enforce_bounds(clock::now());
      if (e.any()) asio::post(io_, [this, e] { report_eviction(e); });
    } catch (const store_error& e) {
      asio::post(io_, [this, error = std::string(e.what()), damage = s.damaged()] {
        storage_failed(error, "bounds", damage);
      });
    }
  });
}

void application::report_eviction(const eviction& e) {
  spdlog::warn(
      "storage evicted reason={} readings={} telemetry_messages={} events={} max_mib={} max_age_days={} "
      "check=\"the uplink has been down long, or storage.max_size_mb is small for this fleet\"",
      e.reason, e.readings, e.telemetry_messages, e.events, cfg_.storage.max_size_mb,
      std::chrono::duration_cast<std::chrono::hours>(cfg_.storage.max_age).count() / 24);
  // History past its age is housekeeping; telemetry removed before it was delivered is news.
  if (e.telemetry_messages == 0 && e.reason == "age") return;
  event ev;
  ev.id = new_event_id();
  ev.kind = event_kind::storage_eviction;
  ev.device = cfg_.gateway.id;
  ev.time = clock::now();
  ev.value = static_cast<double>(e.readings);
  ev.detail = fmt::format(
      "to stay within its bounds ({}; {} MiB, {} days) the gateway removed its {} oldest readings, "
      "{} telemetry messages of them not yet delivered; alarms and faults are never removed",
      e.reason, cfg_.storage.max_size_mb,
      std::chrono::duration_cast<std::chrono::hours>(cfg_.storage.max_age).count() / 24, e.readings,
      e.telemetry_messages);
  raise(std::move(ev));
}

void application::storage_failed(const std::string& error, std::string_view what, bool damage) {
  ++storage_faults_;
  // One critical line when the store starts failing; while it goes on, a count every minute.
  const auto now = std::chrono::steady_clock::now();
  ++storage_failures_unlogged_;
  if (!storage_failing_ || now - storage_failure_logged_ >= std::chrono::minutes(1)) {
    spdlog::critical(
        "storage {} failed faults={} failures_since_last_line={} error=\"{}\" action=\"{}\"", what,
        storage_faults_, storage_failures_unlogged_, error,
        damage ? "the file is damaged: it is moved aside and a fresh one takes its place"
        : storage_in_memory_
            ? "running on a database in memory; fix storage.path or the file system, then restart"
            : "alarms go out from memory; readings are held and written when the disk takes them again");
    storage_failure_logged_ = now;
    storage_failures_unlogged_ = 0;
  }
  // A damaged file's own fault comes with its replacement (storage_damaged), saying more.
  if (storage_failing_ || damage) return;
  raise_storage_fault(
      storage_in_memory_
          ? fmt::format("the gateway cannot open its database {} ({}); it runs on a database in memory: "
                        "alarms are sent, but nothing is kept across a restart until the disk is fixed",
                        cfg_.storage.path, error)
          : fmt::format("the gateway cannot write its database {} ({}); alarms are still sent, from memory, "
                        "but are not kept across a restart until the disk is fixed; check free space and "
                        "the file system",
                        cfg_.storage.path, error),
      0);
}

void application::storage_succeeded() {
  if (!storage_failing_ || storage_in_memory_) return;
  storage_failing_ = false;
  spdlog::info("storage recovered path={} faults={} failures_since_last_line={}", cfg_.storage.path,
               storage_faults_, storage_failures_unlogged_);
  storage_failures_unlogged_ = 0;
  // Every fault still open ends: a write failure and the damage it turned out to be are both over.
  for (auto& id : std::exchange(storage_fault_ids_, {})) {
    event e;
    e.id = new_event_id();
    e.kind = event_kind::storage_recovery;
    e.device = cfg_.gateway.id;
    e.alarm_id = std::move(id);
    e.time = clock::now();
    e.detail = fmt::format("the database {} takes writes again and its outbox reads", cfg_.storage.path);
    raise(std::move(e));
  }
}

void application::record_again(const event& e, const outbox_item& item) {
  store_->post(
      [this, e, item = outbox_item(item)](store& s) mutable {
        try {
          item.id = s.record_event(e, item.lane, item.topic, item.payload);
        } catch (const store_error&) {
          return;  // still failing: the fault is open, the event went out from memory
        }
        asio::post(io_,
                   [this, item = std::move(item)]() mutable { offer_to_uplinks(std::move(item), false); });
      },
      store_worker::priority::urgent);
}

salvage_report application::salvage_at_start(store& s) {
  salvage_report r;
  try {
    r = s.salvage();
  } catch (const store_error& e) {
    r.error = e.what();
    r.outbox_complete = false;
  }
  // Before the worker runs: straight into the store, and the uplinks read them at start.
  for (const auto& e : r.resend) {
    auto item = resent_item(e);
    try {
      s.enqueue(item.lane, item.topic, item.payload);
    } catch (const store_error& x) {
      spdlog::error("storage cannot queue a recovered event again id={} error=\"{}\"", e.id, x.what());
    }
  }
  return r;
}

outbox_item application::resent_item(const event& stored) const {
  // The history keeps an event's own fields, not what its message added (the evidence, a threshold).
  auto e = stored;
  if (!e.point.empty()) e.value_label = label_of(e.device, e.point, e.value);
  e.recovered = true;
  const bool is_alarm = on_alarm_lane(e.kind);
  return {
      0,  is_alarm ? lane::alarm : lane::fault, topic_for(cfg_, is_alarm ? "alarm" : "event"), to_record(e),
      {}, std::make_shared<const event>(e)};
}

void application::replace_damaged(store& s) {
  // On the store's thread, right after the job that met the damage (or an I/O error, after which
  // the pages an alarm depends on are checked first).
  if (!s.damaged() && !s.check_after_failure()) return;
  try {
    auto r = s.replace_damaged();
    const auto moved = *s.moved_aside();
    asio::post(io_, [this, moved, r = std::move(r)]() mutable {
      // Whether these were delivered is unknown: written again and offered like new events.
      for (const auto& e : r.resend) record_again(e, resent_item(e));
      storage_damaged(moved, std::move(r));
      // The carried-over messages are in the fresh outbox under their old ids: read it again.
      for (auto& u : uplinks_) u.link->notify();
    });
  } catch (const store_error& e) {
    asio::post(io_, [this, error = std::string(e.what())] {
      storage_failed(error, "replacing a damaged database");
    });
  }
}

void application::storage_damaged(const moved_aside_database& moved, salvage_report r) {
  if (r.in_memory) storage_in_memory_ = true;
  std::string carried;
  if (!r.error.empty()) {
    carried = fmt::format("nothing could be read from it ({})", r.error);
  } else {
    carried = fmt::format(
        "{} events and {} undelivered alarm and fault messages were carried over and are sent "
        "again marked recovered",
        r.events, r.messages);
    if (r.messages_unreadable > 0) {
      carried += fmt::format("; {} undelivered messages could not be read", r.messages_unreadable);
    }
    if (r.event_stretches_lost > 0) {
      carried +=
          fmt::format("; {} damaged stretches of the event history were skipped", r.event_stretches_lost);
    }
    if (!r.outbox_complete) {
      carried += fmt::format(
          "; which messages were still undelivered could not be read whole, so the {} events of the last 24 "
          "h "
          "not among them are sent again",
          r.resend.size());
    }
  }
  spdlog::error(
      "storage damaged, moved aside path={} moved_to={} error=\"{}\" events_carried={} messages_carried={} "
      "messages_unreadable={} resent={} action=\"a fresh database is in use; keep the moved file for "
      "recovery\"",
      cfg_.storage.path, moved.moved_to, moved.reason, r.events, r.messages, r.messages_unreadable,
      r.resend.size());
  ++storage_faults_;
  const auto where =
      r.in_memory ? fmt::format(
                        "no fresh file could take its place ({}): a database in memory stands in, and "
                        "nothing is kept across a restart until the disk is replaced",
                        r.memory_reason)
      : moved.moved_to == cfg_.storage.path
          ? std::string("it could not be moved aside")
          : fmt::format("it was moved to {}, kept for recovery; a fresh database is in use", moved.moved_to);
  // Open until the fresh file takes a write and its outbox reads (storage_succeeded); with a
  // database in memory, until a restart.
  raise_storage_fault(fmt::format("the database {} was damaged ({}); {}; {}", cfg_.storage.path, moved.reason,
                                  where, carried),
                      static_cast<double>(r.messages_unreadable));
}

void application::raise_storage_fault(std::string detail, double value) {
  storage_failing_ = true;
  event e;
  e.id = new_event_id();
  storage_fault_ids_.push_back(e.id);
  e.kind = event_kind::storage_fault;
  e.device = cfg_.gateway.id;
  e.time = clock::now();
  e.value = value;
  e.detail = std::move(detail);
  raise(std::move(e));
}

}  // namespace firegate
