#pragma once
// Logging set-up: spdlog to stderr, one event a line with key=value fields. Under systemd
// (JOURNAL_STREAM set) each line starts with a syslog priority prefix such as "<4>" so journald
// records the level, and carries no timestamp of its own.

#include <string_view>

namespace firegate {

/// `level`: trace, debug, info, warn, error. Returns false for an unknown level (info is used).
bool setup_logging(std::string_view level, bool journald);
/// Whether stderr is connected to the journal.
bool stderr_is_journal();

}  // namespace firegate
