#pragma once
// The event an outbox item holds, as every uplink reads it: its record (domain/event_record.hpp),
// or, for an item a firegated older than records queued (or salvaged from such a database), the
// facts read back from the platform message it was queued as (firegate.event/1, docs/uplink.md).
// Those items are read here once and rendered by each uplink like any other, so that no uplink
// reads another's wire format.

#include "domain/event.hpp"

#include <optional>
#include <string_view>

namespace firegate {

/// nullopt: neither a record nor an event message (an item with no event behind it).
std::optional<event> stored_event(std::string_view payload);

}  // namespace firegate
