#pragma once
// Commands from the platform (the cmd topic) and the replies to them (cmd/reply), parsed and built
// with no I/O. Schemas and examples: docs/uplink.md, "Commands". Every command is checked strictly:
// an unknown command, a missing or extra argument, a wrong type or a value out of range is refused
// with a reply that says which and why; nothing outside the payload is trusted.

#include "reading.hpp"
#include "rules/alarm_engine.hpp"
#include "rules/event.hpp"

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace firegate {

struct ack_command {
  std::string alarm_id;
  firegate::verdict verdict{verdict::real};
  std::string by;
};
struct shield_command {
  std::string device;
  std::chrono::minutes length{0};
  std::string reason;
  std::string by;
};
struct unshield_command {
  std::string device;
  std::string by;
};
struct test_mode_command {
  std::string device;
  bool on{true};
  std::chrono::minutes length{60};
  std::string by;
};
using command_body = std::variant<ack_command, shield_command, unshield_command, test_mode_command>;

/// A command as parsed: `body` when valid, else `error`. `id` and `name` are kept whenever the
/// payload had them, so that a refusal can still be correlated.
struct parsed_command {
  std::string id;
  std::string name;
  std::optional<command_body> body;
  std::string error;
};

/// Largest command payload accepted.
inline constexpr std::size_t max_command_bytes = 8192;

parsed_command parse_command(std::string_view payload);

/// The reply to a command: `error` empty means done, and `events` are the events it caused.
std::string command_reply(const std::string& gateway, const parsed_command& cmd, const std::string& error,
                          std::span<const event> events, clock::time_point now);

}  // namespace firegate
