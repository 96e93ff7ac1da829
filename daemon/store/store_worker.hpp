#pragma once
// The store's own thread. SQLite's fsyncs take milliseconds (tens on an SD card); on the daemon's
// loop they would delay polling and alarms, so every store call runs here, in the order posted,
// urgent jobs (events, which an alarm waits on) ahead of the others. Jobs report back by posting
// to the loop themselves.

#include "store.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

namespace firegate {

/// Thread safety: post() and call() from any thread; the store is touched only by the worker.
class store_worker {
 public:
  using job = std::function<void(store&)>;
  enum class priority { normal, urgent };

  /// `on_damage` runs on the worker after any job that met a damaged page (store::damaged()) or an
  /// I/O error (store::failure_check_due()), before the next job: the owner checks and moves the
  /// file aside there (store::check_after_failure, store::replace_damaged).
  explicit store_worker(std::unique_ptr<store> s, job on_damage = {});
  /// Runs what is queued, then joins: nothing posted is dropped.
  ~store_worker();
  store_worker(const store_worker&) = delete;
  store_worker& operator=(const store_worker&) = delete;

  void post(job j, priority p = priority::normal);

  /// Runs `f` on the worker and waits for its result (or exception). For start-up, shutdown and
  /// tests; never from a job.
  template <class F>
  auto call(F f) -> std::invoke_result_t<F, store&> {
    using result = std::invoke_result_t<F, store&>;
    auto task = std::make_shared<std::packaged_task<result(store&)>>(std::move(f));
    auto done = task->get_future();
    post([task](store& s) { (*task)(s); }, priority::urgent);
    return done.get();
  }

  /// Jobs waiting (not counting the one running).
  std::size_t queued() const;

 private:
  void run();

  std::unique_ptr<store> store_;
  job on_damage_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> urgent_;
  std::deque<job> normal_;
  bool stopping_{false};
  std::thread thread_;
};

}  // namespace firegate
