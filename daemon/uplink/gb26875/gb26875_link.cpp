#include "gb26875_link.hpp"

#include <spdlog/spdlog.h>

namespace firegate {

gb26875_link::gb26875_link(const uplink_context& context)
    : site_(context.site),
      link_(std::make_shared<gb26875_uplink>(context.executor, *context.site.gb26875, context.store,
                                             context.delivery_bit, gb26875_mapper(context.site))) {
  const auto& services = context.services;
  answers_ = std::make_shared<gb26875_answers>(
      context.executor, context.store, context.site, link_,
      gb26875_answers::sources{services.open_alarms, services.unflushed, services.storage_faulty});
  // Both reach what this object owns: the link forgets them when it is stopped.
  link_->on_query(
      [answers = answers_.get()](const gb26875::app_data& request, gb26875_answers::reply_handler reply) {
        answers->answer(request, std::move(reply));
      });
  link_->on_clock_refused([raise = services.raise, new_id = services.new_event_id, &site = context.site](
                              std::string detail, double step_s) {
    event e;
    e.id = new_id();
    e.kind = event_kind::clock_sync_refused;
    e.device = site.gateway.id;
    e.time = clock::now();
    e.value = step_s;
    e.unit = "s";
    e.detail = std::move(detail);
    raise(std::move(e));
  });
}

gb26875_link::~gb26875_link() {
  link_->stop();  // nothing when stopped already
}

void gb26875_link::stop(uplink_stop why) {
  if (why == uplink_stop::reloaded) {
    // The device table (addresses, component types) may have changed: a new connection maps anew.
    spdlog::info("reload gb26875 uplink centre={}:{} action=reconnect", site_.gb26875->host,
                 site_.gb26875->port);
  }
  link_->stop();
}

uplink_entry gb26875_link_entry() {
  return {
      "gb26875", [](const config::gateway_file& site) { return site.gb26875.has_value(); }, false,
      // Made again on every reload: the devices' addresses and types are read when it is made.
      [](const config::gateway_file&, const config::gateway_file&) { return true; },
      [](config::gateway_file& next, const config::gateway_file& running) { next.gb26875 = running.gb26875; },
      [](const uplink_context& context) -> std::shared_ptr<uplink> {
        return std::make_shared<gb26875_link>(context);
      }};
}

}  // namespace firegate
