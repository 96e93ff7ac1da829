#include "store_worker.hpp"

#include <spdlog/spdlog.h>

namespace firegate {

store_worker::store_worker(std::unique_ptr<store> s, job on_damage)
    : store_(std::move(s)), on_damage_(std::move(on_damage)), thread_([this] { run(); }) {}

store_worker::~store_worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void store_worker::post(job j, priority p) {
  {
    std::lock_guard lock(mutex_);
    (p == priority::urgent ? urgent_ : normal_).push_back(std::move(j));
  }
  wake_.notify_one();
}

std::size_t store_worker::queued() const {
  std::lock_guard lock(mutex_);
  return urgent_.size() + normal_.size();
}

void store_worker::run() {
  for (;;) {
    job next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !urgent_.empty() || !normal_.empty(); });
      auto& from = !urgent_.empty() ? urgent_ : normal_;
      if (from.empty()) return;  // stopping, and everything posted has run
      next = std::move(from.front());
      from.pop_front();
    }
    try {
      next(*store_);
    } catch (const std::exception& e) {
      // Jobs report their own failures; this is a job that did not.
      spdlog::error("storage job failed error=\"{}\"", e.what());
    }
    if (on_damage_ && (store_->damaged() || store_->failure_check_due())) {
      try {
        on_damage_(*store_);
      } catch (const std::exception& e) {
        spdlog::error("storage damage handling failed error=\"{}\"", e.what());
      }
    }
  }
}

}  // namespace firegate
