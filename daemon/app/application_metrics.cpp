// The application's metrics (docs/metrics.md): the endpoint opened as [metrics] says, and a scrape:
// the store read on its thread, then the text made on the loop (app/metrics.hpp).

#include "application.hpp"

#include "uplink/gb26875/gb26875_link.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <utility>

namespace firegate {
namespace asio = boost::asio;

void application::start_metrics() {
  if (metrics_server_) metrics_server_->stop();
  metrics_server_.reset();
  if (!cfg_.metrics.enabled || stopping_) return;
  metrics_server_ = std::make_unique<control::metrics_server>(
      io_.get_executor(), [this](std::function<void(std::string)> done) { scrape_metrics(std::move(done)); });
  if (auto error = metrics_server_->start(cfg_.metrics.address, cfg_.metrics.port); !error.empty()) {
    // The monitoring's view of the box; the gateway's job goes on without it.
    spdlog::error(
        "metrics endpoint unavailable listen={} error=\"{}\" action=\"not scraped until the port is "
        "free and firegated reloaded\"",
        cfg_.metrics.listen(), error);
    metrics_server_.reset();
    return;
  }
  const auto at = metrics_server_->endpoint();
  spdlog::info("metrics endpoint listening address={} port={}", cfg_.metrics.address,
               at ? at->port() : cfg_.metrics.port);
}

void application::scrape_metrics(std::function<void(std::string)> done) {
  // Scrapes that come while one reads the store share its answer: one read at a time, however many
  // scrapers and firegatectls ask.
  scrape_waiting_.push_back(std::move(done));
  if (scrape_waiting_.size() > 1) return;
  store_->post([this](store& s) {
    gateway_metrics::store_view view;
    std::vector<store::backlog> backlog;
    try {
      view.used_bytes = s.used_bytes();
      view.evicted = s.evicted_total();
      backlog = s.outbox_backlog();
    } catch (const std::exception& e) {
      // Said by firegate_store_readable 0; the rest is scraped. Whatever it was, the waiting
      // scrapes are answered (nothing else would ever empty their queue).
      view.error = e.what();
    } catch (...) {
      view.error = "unknown error";
    }
    asio::post(io_, [this, view = std::move(view), backlog = std::move(backlog)]() mutable {
      const auto h = health();
      std::vector<gateway_metrics::uplink_view> ups;
      nlohmann::json gb;
      for (const auto& u : uplinks_) {
        ups.push_back({u.entry->name, u.link.get(),
                       u.bit < backlog.size() ? std::optional(backlog[u.bit]) : std::nullopt});
        if (auto* g = dynamic_cast<gb26875_link*>(u.link.get())) gb = g->link().diagnostics();
      }
      const auto text = metrics_.text({cfg_, h, drivers_, ups, view, gb.is_null() ? nullptr : &gb});
      for (auto& d : std::exchange(scrape_waiting_, {})) d(text);
    });
  });
}

}  // namespace firegate
