#pragma once
// Between Paho's callback thread and the daemon's loop: the messages the site broker delivered,
// waiting to be decoded. Bounded in messages and bytes, and fair: one topic may hold at most
// `per_topic` places, so a sensor that floods its topic cannot crowd out the others (its excess is
// dropped here, counted by topic, before any of it is parsed; its newest message takes the place of
// the newest one waiting, so the latest state it sent is never the one lost). Thread-safe.

#include "domain/reading.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace firegate::mqtt_ingest {

struct inbound {
  std::string topic;
  std::string payload;     ///< empty when the payload was over the size limit (not copied)
  std::size_t size{0};     ///< the payload's size as received
  bool retained{false};    ///< the broker's stored copy, sent on subscribing
  clock::time_point time;  ///< when Paho handed it over
};

class inbox {
 public:
  struct limits {
    std::size_t messages{20000};
    std::size_t bytes{16u << 20};
    std::size_t per_topic{500};
    std::size_t payload{16 * 1024};  ///< larger payloads are queued as their size only
  };
  explicit inbox(limits l) : limits_(l) {}

  /// Paho's thread. True when the loop must be told (nothing was waiting for it, and it had not
  /// said it would look again by itself: take's `hold`).
  bool push(std::string_view topic, std::string_view payload, bool retained, clock::time_point time);
  /// The loop: up to `max` messages, oldest first; `more` says whether others wait. If none do,
  /// the next push returns true again, unless `hold` and something was taken: then the loop has
  /// said it will look again by itself (a quiet moment after a burst), and pushes until then wake
  /// nobody; a take that finds nothing ends the hold.
  std::vector<inbound> take(std::size_t max, bool& more, bool hold = false);
  /// Messages dropped since the last call, by topic (the first 64 topics named, the rest under "").
  std::map<std::string, std::uint64_t> take_drops();
  /// Messages waiting now.
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  limits limits_;
  std::deque<inbound> queue_;
  std::size_t bytes_{0};
  std::unordered_map<std::string, std::size_t> per_topic_;
  std::map<std::string, std::uint64_t> drops_;
  bool told_{false};  ///< the loop has been told (or holds) and has not yet found the queue empty
};

}  // namespace firegate::mqtt_ingest
