#pragma once
// Commands from the platform (the cmd topic) and the replies to them (cmd/reply), parsed and built
// with no I/O. Schemas and examples: docs/uplink.md, "Commands". Every command is checked strictly:
// an unknown command, a missing or extra argument, a wrong type or a value out of range is refused
// with a reply that says which and why; nothing outside the payload is trusted.

#include "domain/event.hpp"
#include "domain/reading.hpp"
#include "domain/time_text.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

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
/// The gateway's status now, in the reply (the same content as the status message).
struct status_command {};
/// Polls a device now and answers with its readings (`point` empty: every point).
struct read_command {
  std::string device;
  std::string point;
};
/// Raises the end-to-end self-test alarm (alarm_engine::self_test).
struct self_test_command {
  std::string by;
};
/// A new configuration (docs/remote.md): the whole site file, or a patch of named keys
/// (config/config_patch.hpp); checked, applied as a reload, and rolled back unless confirmed.
struct config_apply_command {
  std::string file;   ///< the new site file's text; or
  std::string patch;  ///< the patch, as JSON text
  /// When set, refused unless the running configuration's revision starts with it (a change made
  /// against a configuration that has changed since).
  std::string if_revision;
  std::string by;
};
/// Keeps the change config_apply made: `revision` is the one its reply gave.
struct config_confirm_command {
  std::string revision;
  std::string by;
};
/// The daemon's recent log lines (app/log_ring.hpp), answered in parts within the broker's message
/// size ([uplink.mqtt] max_message_bytes).
struct logs_command {
  std::size_t lines{200};           ///< the newest this many at most
  std::chrono::minutes minutes{0};  ///< of the last this many minutes; 0: any age
  std::string level{"info"};        ///< this level or above: debug, info, warn, error, critical
  std::size_t max_bytes{65536};     ///< the lines' bytes at most, all parts together
};
/// What firegatectl status and devices show on site, with the recent warnings and errors, in parts.
struct diagnostics_command {};
using command_body = std::variant<ack_command, shield_command, unshield_command, test_mode_command,
                                  status_command, read_command, self_test_command, config_apply_command,
                                  config_confirm_command, logs_command, diagnostics_command>;

/// A command as parsed: `body` when valid, else `error`. `id` and `name` are kept whenever the
/// payload had them, so that a refusal can still be correlated.
struct parsed_command {
  std::string id;
  std::string name;
  std::optional<command_body> body;
  std::string error;
  /// The command's "expires" (ISO 8601 with offset), when it has one: refused after that time.
  std::optional<clock::time_point> expires;
  /// When the platform issued it ("issued", required): refused when older than
  /// [uplink.mqtt] command_max_age_s, or further ahead of the gateway's clock than a minute.
  std::optional<clock::time_point> issued;
  /// The broker's stored copy (a retained message), never carried out.
  bool retained{false};
  /// What it asks, whatever its id and times: SHA-256 of the command's name and its arguments (as
  /// canonical JSON), in hex. An id seen again with another fingerprint is another command.
  std::string fingerprint;
};

/// Largest command payload accepted: a config_apply carries a whole site file.
inline constexpr std::size_t max_command_bytes = 65536;

parsed_command parse_command(std::string_view payload);

/// A command signed with the gateway's key ([uplink.mqtt] command_key_file): the payload is
/// {"signed": "<the command's JSON text>", "hmac": "<HMAC-SHA256 of those bytes, 64 hex digits>"}.
/// Returns the command's text when the HMAC matches (compared in constant time); nullopt with
/// `error` set when the payload is not that envelope or the HMAC is wrong. `id` gets the inner
/// command's id when it can be read, for the refusal's reply.
std::optional<std::string> open_signed_command(std::string_view payload, std::string_view key,
                                               std::string& error, std::string& id);
/// HMAC-SHA256 of `data` with `key`, as 64 lowercase hex digits.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

/// Why a well-formed command is not carried out now: it is a retained message, it is not on this
/// gateway's allow-list ([uplink.mqtt] commands), it has expired, or it was issued longer ago than
/// `max_age` (or over a minute in the future). Empty when it may run.
std::string command_refusal(const parsed_command& cmd, const std::vector<std::string>& allowed,
                            clock::time_point now, std::chrono::seconds max_age = std::chrono::seconds(300));

/// A reply too large for one message, as parts each within `max_bytes` (the broker's limit): each
/// a whole reply (command_reply) with `result` {key: {"part": i, "parts": n, ...meta, field: ...}}.
/// `lines` (logs): whole items per part, in order; an item too long for a part alone is cut, marked
/// " [cut]". `text` (diagnostics): one text in pieces, whose concatenation in part order is the text
/// (never cut inside a UTF-8 character). Both always make at least one part.
struct reply_content {
  std::string key;      ///< "logs", "diagnostics"
  nlohmann::json meta;  ///< an object: members every part carries
  std::string field;    ///< "lines" or "text"
  std::vector<std::string> lines;
  std::string text;
  bool is_text{false};
};
std::vector<std::string> reply_parts(const std::string& gateway, const parsed_command& cmd,
                                     const reply_content& c, std::size_t max_bytes, clock::time_point now);

/// The reply to a command: `error` empty means done, and `events` are the events it caused.
/// `result`, when given, is a JSON object whose members join the reply (status: "status"; read:
/// "readings").
std::string command_reply(const std::string& gateway, const parsed_command& cmd, const std::string& error,
                          std::span<const event> events, clock::time_point now, std::string_view result = {});

/// The "readings" result of a read command: `readings` of one poll, only `point` when not empty.
std::string readings_result(std::span<const reading> readings, const std::string& point);

}  // namespace firegate
