#include "inbox.hpp"

#include <utility>

namespace firegate::mqtt_ingest {

bool inbox::push(std::string_view topic, std::string_view payload, bool retained, clock::time_point time) {
  const bool oversize = payload.size() > limits_.payload;
  const std::size_t cost = topic.size() + (oversize ? 0 : payload.size());
  std::lock_guard lock(mutex_);
  auto [slot, fresh] = per_topic_.try_emplace(std::string(topic), 0);
  if (slot->second >= limits_.per_topic || queue_.size() >= limits_.messages ||
      bytes_ + cost > limits_.bytes) {
    const auto count_drop = [&] {
      if (drops_.size() < 64 || drops_.contains(std::string(topic))) {
        ++drops_[std::string(topic)];
      } else {
        ++drops_[""];
      }
    };
    count_drop();
    if (fresh) {
      per_topic_.erase(slot);
      return false;
    }
    // The topic has messages waiting: the newest of them gives its place to this one, so that a
    // flooding sensor's latest state is what stays (the one it replaces is the one dropped).
    for (auto it = queue_.rbegin(); it != queue_.rend(); ++it) {
      if (it->topic != topic) continue;
      const std::size_t old_cost = it->topic.size() + it->payload.size();
      if (bytes_ - old_cost + cost > limits_.bytes) return false;
      bytes_ = bytes_ - old_cost + cost;
      *it = {std::string(topic), oversize ? std::string() : std::string(payload), payload.size(), retained,
             time};
      return false;
    }
    return false;
  }
  ++slot->second;
  bytes_ += cost;
  queue_.push_back(
      {std::string(topic), oversize ? std::string() : std::string(payload), payload.size(), retained, time});
  const bool tell = !told_;
  told_ = true;
  return tell;
}

std::vector<inbound> inbox::take(std::size_t max, bool& more, bool hold) {
  std::vector<inbound> out;
  std::lock_guard lock(mutex_);
  while (!queue_.empty() && out.size() < max) {
    auto& m = queue_.front();
    bytes_ -= m.topic.size() + m.payload.size();
    if (auto it = per_topic_.find(m.topic); it != per_topic_.end() && --it->second == 0) per_topic_.erase(it);
    out.push_back(std::move(m));
    queue_.pop_front();
  }
  more = !queue_.empty();
  if (!more) told_ = hold && !out.empty();
  return out;
}

std::map<std::string, std::uint64_t> inbox::take_drops() {
  std::lock_guard lock(mutex_);
  return std::exchange(drops_, {});
}

std::size_t inbox::size() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace firegate::mqtt_ingest
