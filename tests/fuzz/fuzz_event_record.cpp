// libFuzzer target: an outbox item's payload read back as an event (uplink/stored_event.cpp): an
// event record (domain/event_record.cpp) or a firegate.event/1 message an older firegated queued,
// from a database that may be damaged. Any bytes must give an event or nothing, never a crash; an
// event read back, recorded again, must read back the same (the record loses nothing).

#include "domain/event_record.hpp"
#include "uplink/stored_event.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto e = firegate::stored_event(text);
  if (!e) return 0;
  const auto again = firegate::parse_record(firegate::to_record(*e));
  if (!again) std::abort();
  const auto same_number = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
  if (again->id != e->id || again->kind != e->kind || again->device != e->device || again->time != e->time ||
      again->point != e->point || !same_number(again->value, e->value) || again->detail != e->detail ||
      again->evidence.size() != e->evidence.size() || again->recovered != e->recovered ||
      again->first_time != e->first_time || again->until != e->until) {
    std::abort();
  }
  return 0;
}
