// libFuzzer target: the MQTT ingest inbox (drivers/mqtt/inbox.hpp), where whatever the site broker
// delivers waits for the loop. The input is its limits, then a sequence of operations (push a message
// on topic k with a payload of size s, take up to n, holding or not, advance the clock, take the drop
// counts), run against the inbox and against a plain model of what its header and
// tests/unit/test_mqtt_inbox.cpp promise. Checked after every operation:
//  - never more than `messages` held, nor more than `per_topic` of one topic, nor more than `bytes`
//    (topic + payload kept) accounted;
//  - a push is refused (dropped, counted for its topic) when over a bound; a topic with messages
//    waiting then has its newest waiting one replaced by the new one (the latest state stays),
//    unless the bytes do not allow it; no other topic's message is ever touched;
//  - take() gives the oldest first, each message exactly as pushed (payload only its size when over
//    the payload limit), `more` right, and push() says "tell the loop" exactly once per emptying
//    (a take that holds and took something is no emptying: the loop looks again by itself);
//  - every message pushed is taken, still waiting, or counted in take_drops(), exactly once.

#include "mqtt/inbox.hpp"

#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace firegate;
using namespace firegate::mqtt_ingest;

namespace {

/// Topics 0-7 have shapes of their own; the others are "t/<k>" (over 64 of them for the drop map).
std::string topic_of(std::uint8_t k) {
  static const char* const shaped[] = {"a",
                                       "zigbee2mqtt/kitchen",
                                       "b/1",
                                       "a/1",
                                       "x/+/#",
                                       "t/1",
                                       "very/long/topic/name/for/a/bridge/that/nests/deeply/00001",
                                       "\xff\xfe"};
  if (k < 8) return shaped[k];
  return "t/" + std::to_string(k);
}

class model {
 public:
  explicit model(inbox::limits l) : limits_(l) {}

  bool push(const std::string& topic, const std::string& payload, bool retained, clock::time_point time) {
    const bool oversize = payload.size() > limits_.payload;
    inbound m{topic, oversize ? std::string() : payload, payload.size(), retained, time};
    const std::size_t cost = cost_of(m);
    std::size_t mine = 0;
    for (const auto& q : queue_) mine += q.topic == topic;
    if (mine >= limits_.per_topic || queue_.size() >= limits_.messages || bytes_ + cost > limits_.bytes) {
      ++dropped_;
      if (drops_.size() < 64 || drops_.contains(topic)) {
        ++drops_[topic];
      } else {
        ++drops_[""];
      }
      for (auto it = queue_.rbegin(); it != queue_.rend(); ++it) {
        if (it->topic != topic) continue;
        if (bytes_ - cost_of(*it) + cost > limits_.bytes) return false;  // the waiting one stays
        bytes_ = bytes_ - cost_of(*it) + cost;
        *it = std::move(m);
        return false;
      }
      return false;
    }
    bytes_ += cost;
    queue_.push_back(std::move(m));
    const bool tell = !told_;
    told_ = true;
    return tell;
  }

  std::vector<inbound> take(std::size_t max, bool& more, bool hold) {
    std::vector<inbound> out;
    while (!queue_.empty() && out.size() < max) {
      bytes_ -= cost_of(queue_.front());
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    more = !queue_.empty();
    if (!more) told_ = hold && !out.empty();
    return out;
  }

  std::map<std::string, std::uint64_t> take_drops() { return std::exchange(drops_, {}); }
  std::size_t size() const { return queue_.size(); }
  std::uint64_t dropped() const { return dropped_; }

  /// The bounds the header promises, on what the model holds.
  void check_bounds() const {
    if (queue_.size() > limits_.messages) std::abort();
    std::map<std::string, std::size_t> per_topic;
    std::size_t bytes = 0;
    for (const auto& q : queue_) {
      if (++per_topic[q.topic] > limits_.per_topic) std::abort();
      bytes += cost_of(q);
    }
    if (bytes != bytes_ || bytes > limits_.bytes) std::abort();
  }

 private:
  static std::size_t cost_of(const inbound& m) { return m.topic.size() + m.payload.size(); }

  inbox::limits limits_;
  std::deque<inbound> queue_;
  std::size_t bytes_{0};
  std::map<std::string, std::uint64_t> drops_;
  std::uint64_t dropped_{0};
  bool told_{false};
};

bool same(const inbound& a, const inbound& b) {
  return a.topic == b.topic && a.payload == b.payload && a.size == b.size && a.retained == b.retained &&
         a.time == b.time;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  // Small limits, so that every bound is reached within a short input.
  const inbox::limits limits{1u + data[0] % 16u, 8u + data[1] * 4u, data[2] % 9u, data[3] % 80u};
  inbox box(limits);
  model expect(limits);
  std::uint64_t pushed = 0, taken = 0, dropped_reported = 0;
  clock::time_point now{};
  std::uint32_t serial = 0;

  std::size_t at = 4;
  const auto next = [&]() -> std::uint8_t { return at < size ? data[at++] : 0; };
  while (at < size) {
    const std::uint8_t op = next();
    switch (op % 4) {
      case 0: {  // push
        const std::uint8_t k = next();
        const std::size_t length = next() + ((op & 0x10u) ? 64u * static_cast<unsigned>(op >> 5) : 0u);
        const auto topic = topic_of(k);
        // Each payload names its push, so that a message taken is known for which one it is.
        std::string payload = std::to_string(++serial) + ":";
        payload.resize(length, static_cast<char>('a' + serial % 26));
        const bool retained = (op & 4u) != 0;
        now += std::chrono::microseconds(1);  // times are unique too
        ++pushed;
        if (box.push(topic, payload, retained, now) != expect.push(topic, payload, retained, now))
          std::abort();
        break;
      }
      case 1: {  // take
        const auto how = next();
        const std::size_t max = how % 8u;
        const bool hold = (how & 8u) != 0;  // the loop will look again by itself
        bool more = false, more_expected = false;
        const auto got = box.take(max, more, hold);
        const auto want = expect.take(max, more_expected, hold);
        if (got.size() != want.size() || more != more_expected || got.size() > max) std::abort();
        for (std::size_t i = 0; i < got.size(); ++i) {
          if (!same(got[i], want[i])) std::abort();
          if (got[i].payload.empty() != (got[i].size > limits.payload || got[i].size == 0)) std::abort();
        }
        taken += got.size();
        break;
      }
      case 2:  // the clock moves on (arrival times only; the inbox keeps them as given)
        now += std::chrono::milliseconds(next());
        break;
      case 3: {  // drop counts
        const auto got = box.take_drops();
        if (got != expect.take_drops()) std::abort();
        for (const auto& [topic, n] : got) {
          if (n == 0) std::abort();
          dropped_reported += n;
        }
        break;
      }
    }
    expect.check_bounds();
    if (box.size() != expect.size()) std::abort();
    // Conservation: every push is waiting, taken, or counted as one message dropped.
    if (pushed != taken + box.size() + expect.dropped()) std::abort();
  }
  for (const auto& [topic, n] : box.take_drops()) dropped_reported += n;
  if (dropped_reported != expect.dropped()) std::abort();
  bool more = true;
  const auto rest = box.take(limits.messages + 1, more);
  if (more || rest.size() != expect.size() || box.size() != 0) std::abort();
  return 0;
}
