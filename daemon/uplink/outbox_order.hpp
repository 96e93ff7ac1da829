#pragma once
// Order within a lane across a restart. An uplink reads its backlog from the store (store::pending,
// lanes in order, each by id) and takes new events the moment they are committed (offer). After a
// restart the backlog may hold an alarm that a fresh event ends: the fresh recovery, offered at
// once, would reach the platform before the alarm still waiting in the store. So a fresh event goes
// straight out only in a lane the uplink has read to the end; until then it comes from the store, in
// order, behind what is older. Shared by the MQTT and GB/T 26875.3 uplinks.

#include "store/store.hpp"

#include <array>
#include <cstddef>
#include <vector>

namespace firegate {

class outbox_order {
 public:
  /// An event committed now may be sent before the store is read again: nothing older of its lane
  /// is left unread. Items the store could not take (negative ids) are never in it: always true.
  bool may_offer(const outbox_item& item) const {
    return item.id < 0 || item.lane == lane::telemetry || read_to_end_[static_cast<std::size_t>(item.lane)];
  }
  /// Alarms or faults may be waiting unread: the store is to be read even with a full queue.
  bool events_unread() const {
    return !read_to_end_[static_cast<std::size_t>(lane::alarm)] ||
           !read_to_end_[static_cast<std::size_t>(lane::fault)];
  }
  /// A read of at most `asked` items returned `items`, in lane order: fewer than asked, and every
  /// lane was read to the end; as many, and every lane before the last item's was.
  void read(const std::vector<outbox_item>& items, std::size_t asked) {
    const auto upto = items.size() < asked || items.empty() ? read_to_end_.size()
                                                            : static_cast<std::size_t>(items.back().lane);
    for (std::size_t l = 0; l < upto; ++l) read_to_end_[l] = true;
  }
  /// Not known any more (a read failed; the database was replaced).
  void forget() { read_to_end_ = {}; }

 private:
  std::array<bool, 3> read_to_end_{};
};

}  // namespace firegate
