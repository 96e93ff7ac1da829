#pragma once
// One uplink's reader of the store's outbox, the same for every uplink: what it has read and not
// yet delivered, in the order it goes out, and its delivery marks.
//
// - Lanes: alarms, then faults, then telemetry; within a lane, the order items came in (read from
//   the store or offered as they were committed).
// - Reading: the backlog is read in batches through the store's worker (store::pending, never on
//   the loop), at most `read_ahead` items held at once; an event is offered the moment it is
//   committed. A read skips what is held here (queued, in flight, held back, being marked).
// - Order across a restart: an event that names an earlier one is held back until its lane has
//   been read to the end (outbox_order.hpp).
// - In flight: an item taken to be sent stays here until the uplink says it was delivered (done:
//   marked in the store with this uplink's bit, acknowledgements that arrive together in one
//   transaction) or not (put_back: queued again where it was, ahead of what came later).
// - Items the store could not take (negative ids) are held in memory only: done forgets them.
//
// An uplink owns one reader with its own delivery bit; adding an uplink adds a reader, not a
// cursor. Every member function runs on the daemon's loop.
//
// Lifetime: held by shared_ptr (make()); a read or a mark under way on the store's thread holds the
// reader until its reply has run on the loop, so no reply needs to ask whether the reader still
// exists. The owner calls stop() before it goes: no `ready` after that, and the deliveries not yet
// marked go to the store at once.

#include "store/store_worker.hpp"
#include "uplink/outbox_order.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace firegate {

class outbox_reader : public std::enable_shared_from_this<outbox_reader> {
 public:
  struct settings {
    unsigned uplink{0};          ///< this uplink's delivery bit in the store
    std::size_t read_ahead{64};  ///< items held at most after a read (queued)
    /// false: this uplink sends no stored telemetry; telemetry read from the store (stored before
    /// the uplink was configured) is marked delivered for it at once.
    bool telemetry{true};
    /// Runs on the store's thread on each item read, before it reaches the loop: where an uplink
    /// writes what is costly to write (a telemetry message from its readings).
    std::function<void(outbox_item&)> prepare;
    std::string log_name{"uplink"};  ///< how the log names the uplink
  };

  /// `ready` runs on the loop when a read from the store has queued items (or released held ones),
  /// never after stop().
  static std::shared_ptr<outbox_reader> make(boost::asio::any_io_executor loop, store_worker& worker,
                                             settings s, std::function<void()> ready);
  outbox_reader(const outbox_reader&) = delete;
  outbox_reader& operator=(const outbox_reader&) = delete;

  /// New items are in the store: read them when there is room.
  void notify();
  /// An item left in the store for a later read (an uplink declined it): read it when there is room,
  /// without reading now.
  void left_in_store();
  /// An item just committed, or one the store could not take (negative id). `follows`: its event
  /// names an earlier one (held back after a restart, outbox_order.hpp). False when already held.
  bool offer(outbox_item item, bool follows = false);

  /// The next item to send (lane order), or null. The uplink may write into it (its payload).
  outbox_item* front();
  /// Takes the front (there must be one): in flight until done() or put_back().
  const outbox_item& take();
  /// An item in flight, or null.
  const outbox_item* in_flight_item(std::int64_t id) const;
  /// Delivered, or never sendable on this uplink: marked delivered for it (or forgotten when it was
  /// held in memory only). Unknown ids are ignored.
  void done(std::int64_t id);
  /// Not delivered: queued again where it was.
  void put_back(std::int64_t id);
  /// Every item in flight queued again (the connection was lost).
  void put_back_all();
  /// No reads from the store and no `ready` after this (the uplink stops). The deliveries not yet
  /// marked (those that came while a mark was committing) go to the store now, ahead of anything a
  /// reader made after this one reads; later ones (a retired connection's grace) still go.
  void stop();

  std::size_t queued() const { return queued_.size(); }
  std::size_t in_flight() const { return in_flight_.size(); }
  std::size_t held() const { return order_.held(); }
  /// Reads more when few are queued and the store may have more (and no read is under way).
  void refill();

 private:
  using queue_key = std::pair<int, std::uint64_t>;  ///< (lane, arrival)
  void enqueue(outbox_item item);
  outbox_reader(boost::asio::any_io_executor loop, store_worker& worker, settings s,
                std::function<void()> ready);
  /// A read's reply, on the loop.
  void read_done(std::vector<outbox_item>& items, const std::string& error, std::size_t want,
                 std::uint64_t generation);
  void flush_marks();
  /// One transaction marking `ids` delivered, its reply (holding this reader) back on the loop.
  void post_marks(std::vector<std::int64_t> ids);

  boost::asio::any_io_executor loop_;
  store_worker& worker_;
  settings settings_;
  std::function<void()> ready_;  ///< emptied by stop()
  std::map<queue_key, outbox_item> queued_;
  std::map<std::int64_t, std::pair<queue_key, outbox_item>> in_flight_;
  std::uint64_t arrivals_{0};
  /// Every id held here (queued, in flight, held back, being marked): a read skips them.
  std::set<std::int64_t> known_;
  std::vector<std::int64_t> to_mark_;
  outbox_order order_;
  std::uint64_t notifications_{0};
  bool marking_{false};
  bool refilling_{false};
  bool store_has_more_{true};
  bool stopped_{false};
};

}  // namespace firegate
