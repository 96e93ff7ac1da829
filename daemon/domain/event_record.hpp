#pragma once
// How an event is kept in the outbox until every uplink has delivered it: every fact of the event
// (the `event` struct, field for field), in a form of the gateway's own that is no uplink's wire
// format. Each uplink renders the record into its own format when it sends it (the platform's
// JSON, a GB/T 26875.3 component status), so that neither reads what the other sends.
//
// The form is a JSON object with "record": "firegate.event-record/1"; times are integers (the
// system clock's ticks since the epoch), so that a record read back is the event that was written.
// Fields are added, never renamed or given another meaning; a reader ignores what it does not know.

#include "domain/event.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace firegate {

inline constexpr std::string_view event_record_schema = "firegate.event-record/1";

std::string to_record(const event& e);
/// The event a record holds; nullopt when `text` is not one (another form, or damaged).
std::optional<event> parse_record(std::string_view text);

}  // namespace firegate
