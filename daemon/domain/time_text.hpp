#pragma once
// Times as text: ISO 8601 as commands, the control API and sensors' messages write them.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace firegate {

/// ISO 8601 local time with milliseconds and UTC offset, such as "2026-11-24T14:03:05.123+08:00".
std::string iso8601(std::chrono::system_clock::time_point t);

/// "2026-11-27T15:04:05+08:00": optional fractional seconds, "Z" for UTC, an offset with or without
/// its colon (+0800), a space for the T. nullopt when not that form (a time without its zone is
/// not one), not a real date, or outside the years 1970–2200.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

}  // namespace firegate
