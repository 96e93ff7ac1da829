#pragma once
// The gateway's answers to a GB/T 26875.3 centre's reads (docs/gb26875.md, "What the centre can
// ask"): facility and component status from the open alarms, analog values from the latest
// readings, versions, configuration and time. The uplink (gb26875_uplink) handles the protocol and
// asks this object through its query handler; the application gives what only it knows as sources.

#include "config/config.hpp"
#include "gb26875/app_data.hpp"
#include "gb26875_uplink.hpp"
#include "store/store_worker.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace firegate {

/// Owned by the application beside its uplink through a shared_ptr, replaced with it by a reload; a
/// read of the store under way holds it (and so its uplink) until the answer has gone to that
/// uplink, which sends nothing once stopped. Runs on the loop.
class gb26875_answers : public std::enable_shared_from_this<gb26875_answers> {
 public:
  /// What the answers read of the gateway, on the loop, when a read comes.
  struct sources {
    std::function<std::vector<open_alarm>()> open_alarms;  ///< the alarm engine's
    std::function<std::span<const reading>()> unflushed;   ///< readings not yet in the store
    std::function<bool()> storage_faulty;                  ///< the database fails, or one in memory stands in
  };
  using reply_handler = std::function<void(std::optional<gb26875::app_data>)>;

  /// `site`: the configuration in force (the application's, replaced in place by a reload), and the
  /// sources, outlive this object; `uplink` gives its mapper and the centre's clock.
  gb26875_answers(boost::asio::any_io_executor loop, store_worker& worker, const config::gateway_file& site,
                  std::shared_ptr<const gb26875_uplink> uplink, sources s);
  gb26875_answers(const gb26875_answers&) = delete;
  gb26875_answers& operator=(const gb26875_answers&) = delete;

  /// Answers `request` (61-68, 81, 84-88) through `reply`: at once, or after a read of the store;
  /// nullopt to deny (nothing of this gateway's was named).
  void answer(const gb26875::app_data& request, reply_handler reply);

 private:
  boost::asio::any_io_executor loop_;
  store_worker& worker_;
  const config::gateway_file& site_;
  std::shared_ptr<const gb26875_uplink> uplink_;
  sources sources_;
};

}  // namespace firegate
