#include "mqtt_client/paho_support.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <atomic>
#include <list>
#include <mutex>
#include <thread>

namespace firegate::paho {
namespace {

/// The threads retiring clients; joined as they finish (at the next retirement), at join_retired(),
/// and at exit for any still running.
class retirements {
 public:
  ~retirements() { join_all(); }

  void add(std::function<void()> work) {
    std::lock_guard lock(mutex_);
    // Threads already done are joined here, so the list stays as short as the retirements under way.
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([work = std::move(work), done] {
                          work();
                          done->store(true);
                        }),
                        done});
  }

  void join_all() {
    std::list<entry> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.thread.join();
  }

 private:
  struct entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex mutex_;
  std::list<entry> threads_;
};

retirements& all_retirements() {
  static retirements r;
  return r;
}

}  // namespace

void retire(retired_client r, boost::asio::any_io_executor loop) {
  if (!r.client) return;
  // While this executor exists the loop has work: it outlives the disconnect, then goes back to the
  // loop to be released there.
  auto tracked = boost::asio::prefer(loop, boost::asio::execution::outstanding_work.tracked);
  auto owned = std::make_shared<retired_client>(std::move(r));
  all_retirements().add([owned, loop = std::move(loop), tracked = std::move(tracked)]() mutable {
    mqtt::token_ptr token;  // kept until the client goes (Paho 1.2 signals it after waking its waiter)
    if (owned->disconnect) {
      try {
        token = owned->client->disconnect(static_cast<int>(owned->disconnect->count()));
        token->wait_for(*owned->disconnect + std::chrono::seconds(1));
      } catch (const mqtt::exception& e) {
        spdlog::debug("mqtt disconnect error=\"{}\"", e.what());
      }
    }
    boost::asio::post(loop, [tracked = std::move(tracked)] {});
    owned->client.reset();  // joins Paho's threads before the listeners and the token go
    owned->listeners.clear();
  });
}

void join_retired() {
  all_retirements().join_all();
}

}  // namespace firegate::paho
