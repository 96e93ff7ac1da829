#pragma once
// A recovery after its alarm, across a restart. An uplink reads its backlog from the store
// (store::pending: lanes in order, each by id) and takes new events the moment they are committed
// (offer). After a restart the backlog may hold an alarm that a fresh event ends, acknowledges or
// escalates: offered at once, that event would reach the platform before the alarm it names. So an
// event that names an earlier one is held in memory until the uplink has read its lane from the
// store to the end, then queued behind what was read. Everything else goes at once: a fresh fire
// alarm never waits behind a backlog. A read that fails releases what is held and ends the holding
// until the next start: delivery comes before order. Shared by the MQTT and GB/T 26875.3 uplinks.

#include "store/store.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace firegate {

class outbox_order {
 public:
  /// Whether `item` (offered as it was committed; `follows`: its event names an earlier one) must
  /// wait. Items the store could not take (negative ids) are never in it: they never wait.
  bool must_wait(const outbox_item& item, bool follows) const {
    return follows && item.id > 0 && item.lane != lane::telemetry &&
           !read_to_end_[static_cast<std::size_t>(item.lane)];
  }
  void hold(outbox_item item) { held_.emplace(item.id, std::move(item)); }

  /// A read of at most `asked` items returned `items`, in lane order: fewer than asked, and every
  /// lane was read to the end; as many, every lane before the last item's was. Returns the held
  /// items whose lane is now read to the end, oldest first.
  std::vector<outbox_item> read(const std::vector<outbox_item>& items, std::size_t asked) {
    if (asked == 0) return {};
    const auto upto =
        items.size() < asked ? read_to_end_.size() : static_cast<std::size_t>(items.back().lane);
    for (std::size_t l = 0; l < upto; ++l) read_to_end_[l] = true;
    return release(false);
  }
  /// A read failed: what is held goes now, and nothing is held any more.
  std::vector<outbox_item> read_failed() {
    read_to_end_.fill(true);
    return release(true);
  }
  std::size_t held() const { return held_.size(); }

 private:
  std::vector<outbox_item> release(bool all) {
    std::vector<outbox_item> out;
    for (auto it = held_.begin(); it != held_.end();) {
      if (all || read_to_end_[static_cast<std::size_t>(it->second.lane)]) {
        out.push_back(std::move(it->second));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  std::array<bool, 3> read_to_end_{};
  std::map<std::int64_t, outbox_item> held_;  ///< by outbox id: released oldest first
};

}  // namespace firegate
