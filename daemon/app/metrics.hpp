#pragma once
// The gateway's metrics in Prometheus's text format (docs/metrics.md): `firegatectl metrics` and the
// [metrics] HTTP endpoint. The counters stay where they are kept (the drivers', the uplinks', the
// store's, the application's own below); a scrape reads them on the loop into prometheus-cpp's
// metric families, and prometheus-cpp's serializer writes the text.

#include "config/config.hpp"
#include "domain/event.hpp"
#include "domain/health.hpp"
#include "domain/histogram.hpp"
#include "driver.hpp"
#include "store/store.hpp"
#include "uplink/uplink.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace firegate {

/// What the application counts for the metrics itself, and the scrape. Runs on the loop.
class gateway_metrics {
 public:
  /// The stages of a fire or supervisory alarm's path the application sees: raised by the rules
  /// from its reading (decided), then committed to the database (stored). An uplink's own
  /// histogram has its delivery. Other events (acknowledgements, linkage, escalations) are timed
  /// from a decision, not a reading, and are not counted there.
  enum class stage : std::uint8_t { decided, stored };

  /// Whether an event's path is timed: a fire or supervisory alarm, not a test.
  static bool timed(const event& e);
  /// An event raised: counted by kind, and for a timed alarm its reading's age.
  void raised(const event& e, clock::time_point now);
  /// An event committed to the database (a timed alarm: its reading's age).
  void stored(const event& e, clock::time_point now);
  /// A reload applied or refused (SIGHUP, firegatectl).
  void reloaded(bool applied) { ++(applied ? reloads_applied_ : reloads_refused_); }

  /// One configured uplink and what it has still to deliver.
  struct uplink_view {
    std::string_view name;  ///< its table: "mqtt", "gb26875"
    const uplink* link;
    std::optional<store::backlog> backlog;  ///< none: the store could not be read
  };
  /// What the store's thread read for the scrape.
  struct store_view {
    std::optional<std::uint64_t> used_bytes;
    std::optional<eviction> evicted;  ///< since the database was made
    std::string error;                ///< the store could not be read
  };
  struct scrape {
    const config::gateway_file& site;
    const gateway_health& health;
    std::span<const std::unique_ptr<bus_driver>> drivers;
    std::span<const uplink_view> uplinks;
    const store_view& store;
    const nlohmann::json* gb26875;  ///< the GB/T 26875.3 uplink's diagnostics; null without one
  };
  /// The whole exposition, as Prometheus's text format 0.0.4.
  std::string text(const scrape& s) const;

 private:
  std::array<std::uint64_t, 64> raised_by_kind_{};
  std::array<latency_histogram, 2> stages_{};
  std::uint64_t reloads_applied_{0}, reloads_refused_{0};
};

}  // namespace firegate
