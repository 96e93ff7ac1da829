#include "outbox_reader.hpp"

#include "uplink/stored_event.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <utility>

namespace firegate {

outbox_reader::outbox_reader(boost::asio::any_io_executor loop, store_worker& worker, settings s,
                             std::function<void()> ready)
    : loop_(std::move(loop)), worker_(worker), settings_(std::move(s)), ready_(std::move(ready)) {}

std::shared_ptr<outbox_reader> outbox_reader::make(boost::asio::any_io_executor loop, store_worker& worker,
                                                   settings s, std::function<void()> ready) {
  return std::shared_ptr<outbox_reader>(
      new outbox_reader(std::move(loop), worker, std::move(s), std::move(ready)));
}

void outbox_reader::stop() {
  if (stopped_) return;
  stopped_ = true;
  ready_ = nullptr;  // what it reached (the uplink) may go now
  // Acknowledgements that arrived while a mark was committing: recorded now, before a reader that
  // replaces this one reads the same rows, or they would go again.
  if (!to_mark_.empty()) post_marks(std::exchange(to_mark_, {}));
}

void outbox_reader::notify() {
  left_in_store();
  refill();
}

void outbox_reader::left_in_store() {
  ++notifications_;
  store_has_more_ = true;
}

bool outbox_reader::offer(outbox_item item, bool follows) {
  if (known_.contains(item.id)) return false;
  known_.insert(item.id);
  if (order_.must_wait(item, follows)) {
    // It names an earlier event that may still be in the store, unread (after a restart): held
    // until its lane is read to the end, then queued behind what was read (outbox_order.hpp).
    order_.hold(std::move(item));
  } else {
    enqueue(std::move(item));
  }
  return true;
}

void outbox_reader::enqueue(outbox_item item) {
  queued_.emplace(queue_key{static_cast<int>(item.lane), arrivals_++}, std::move(item));
}

outbox_item* outbox_reader::front() {
  return queued_.empty() ? nullptr : &queued_.begin()->second;
}

const outbox_item& outbox_reader::take() {
  auto node = queued_.extract(queued_.begin());
  const auto id = node.mapped().id;
  auto [it, fresh] = in_flight_.emplace(id, std::pair{node.key(), std::move(node.mapped())});
  if (!fresh) {
    // Cannot happen while known_ keeps an id from being queued twice: said, not silently dropped.
    spdlog::error("{} outbox item taken twice outbox_id={} action=\"the first stays in flight\"",
                  settings_.log_name, id);
  }
  refill();
  return it->second.second;
}

const outbox_item* outbox_reader::in_flight_item(std::int64_t id) const {
  const auto it = in_flight_.find(id);
  return it == in_flight_.end() ? nullptr : &it->second.second;
}

void outbox_reader::done(std::int64_t id) {
  if (in_flight_.erase(id) == 0) return;
  if (id > 0) {
    to_mark_.push_back(id);
    flush_marks();
  } else {
    known_.erase(id);  // held in memory only: nothing to mark
  }
}

void outbox_reader::put_back(std::int64_t id) {
  auto node = in_flight_.extract(id);
  if (node.empty()) return;
  auto& [key, item] = node.mapped();
  queued_.emplace(key, std::move(item));
}

void outbox_reader::put_back_all() {
  for (auto& [id, held] : in_flight_) queued_.emplace(held.first, std::move(held.second));
  in_flight_.clear();
}

void outbox_reader::refill() {
  if (stopped_ || refilling_ || !store_has_more_ || queued_.size() >= settings_.read_ahead / 2 + 1) return;
  refilling_ = true;
  const auto want = settings_.read_ahead - queued_.size();
  const auto generation = notifications_;
  // The job holds the reader for its reply and touches nothing of it on the store's thread.
  worker_.post([self = shared_from_this(), want, generation, exclude = known_, uplink = settings_.uplink,
                prepare = settings_.prepare, name = settings_.log_name](store& s) mutable {
    auto items = std::make_shared<std::vector<outbox_item>>();
    std::string error;
    try {
      *items = s.pending(uplink, want, exclude);
      for (auto& item : *items) {
        // An event's record read back here, off the loop, for the uplink to render as it sends it.
        if (item.lane != lane::telemetry) {
          if (auto e = stored_event(item.payload)) {
            item.event = std::make_shared<const event>(std::move(*e));
          } else {
            // Damaged, or of no form this build reads: each uplink does what it can with it (the
            // MQTT uplink sends it as stored, the GB/T 26875.3 uplink has nothing to map).
            spdlog::error(
                "{} outbox item is not an event this build can read outbox_id={} bytes={} "
                "action=\"sent as stored where the uplink can\"",
                name, item.id, item.payload.size());
          }
        }
        if (prepare) prepare(item);
      }
    } catch (const store_error& e) {
      error = e.what();
    }
    // The reply takes the job's hold: the reader's last one is never let go on the store's thread.
    auto loop = self->loop_;
    boost::asio::post(loop, [self = std::move(self), items, error, want, generation] {
      self->read_done(*items, error, want, generation);
    });
  });
}

void outbox_reader::read_done(std::vector<outbox_item>& items, const std::string& error, std::size_t want,
                              std::uint64_t generation) {
  refilling_ = false;
  if (stopped_) return;  // nothing read is sent now; the store keeps it for the next reader
  if (!error.empty()) {
    spdlog::error("{} cannot read the outbox error=\"{}\" action=\"retry on the next notice\"",
                  settings_.log_name, error);
    store_has_more_ = false;
    // Delivery before order: what waited for this read goes now.
    for (auto& item : order_.read_failed()) enqueue(std::move(item));
    if (ready_) ready_();
    return;
  }
  auto released = order_.read(items, want);
  store_has_more_ = items.size() >= want || generation != notifications_;
  for (auto& item : items) {
    if (known_.contains(item.id)) continue;
    known_.insert(item.id);
    if (item.lane == lane::telemetry && !settings_.telemetry) {
      to_mark_.push_back(item.id);  // this uplink sends no stored telemetry
      continue;
    }
    enqueue(std::move(item));
  }
  // Behind what was just read: a recovery after its alarm.
  for (auto& item : released) enqueue(std::move(item));
  flush_marks();
  if (ready_) ready_();
  // A read that queued little (what it found this uplink marks at once, or the uplink took it
  // all) reads on while the store has more: it does not wait for the next notice.
  refill();
}

void outbox_reader::flush_marks() {
  // One transaction for every acknowledgement that arrived while the last one was committing.
  // Once stopped, each goes at once: the loop may end (a daemon stopping) before the mark under way
  // has answered, and what waited behind it would never be posted.
  if ((marking_ && !stopped_) || to_mark_.empty()) return;
  marking_ = true;
  post_marks(std::exchange(to_mark_, {}));
}

void outbox_reader::post_marks(std::vector<std::int64_t> ids) {
  // Of the reader, the job holds it for the reply and reads nothing of it on the store's thread.
  worker_.post(
      [self = shared_from_this(), uplink = settings_.uplink, ids = std::move(ids)](store& s) mutable {
        std::string error;
        try {
          s.mark_delivered(uplink, ids);
        } catch (const store_error& e) {
          error = e.what();  // they stay undelivered and go again: the receiver de-duplicates on the id
        }
        auto loop = self->loop_;
        boost::asio::post(loop, [self = std::move(self), ids, error] {
          self->marking_ = false;
          if (!error.empty())
            spdlog::error("{} cannot mark delivered count={} error=\"{}\"", self->settings_.log_name,
                          ids.size(), error);
          for (const auto id : ids) self->known_.erase(id);
          self->flush_marks();
        });
      });
}

}  // namespace firegate
