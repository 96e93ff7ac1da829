#include "commands.hpp"

#include "domain/sha256.hpp"
#include "uplink/mqtt/payloads.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

namespace firegate {
namespace {

using json = nlohmann::json;

/// Reads the arguments of one command, remembering the first problem; every key must be used.
class args_reader {
 public:
  explicit args_reader(const json& args) : args_(args) {}
  /// A key read by the caller itself.
  void used(const char* key) { used_.insert(key); }

  std::string text(const char* key, std::size_t max_len, bool required = true) {
    used_.insert(key);
    auto it = args_.find(key);
    if (it == args_.end()) {
      if (required) fail(fmt::format("argument \"{}\" is missing", key));
      return {};
    }
    if (!it->is_string()) {
      fail(fmt::format("argument \"{}\" must be a string", key));
      return {};
    }
    auto s = it->get<std::string>();
    if (s.empty() || s.size() > max_len)
      fail(fmt::format("argument \"{}\" must be 1–{} characters", key, max_len));
    return s;
  }
  std::int64_t integer(const char* key, std::int64_t min, std::int64_t max,
                       std::optional<std::int64_t> fallback) {
    used_.insert(key);
    auto it = args_.find(key);
    if (it == args_.end()) {
      if (!fallback) fail(fmt::format("argument \"{}\" is missing", key));
      return fallback.value_or(min);
    }
    if (!it->is_number_integer()) {
      fail(fmt::format("argument \"{}\" must be a whole number", key));
      return min;
    }
    const auto v = it->get<std::int64_t>();
    if (v < min || v > max) fail(fmt::format("argument \"{}\" must be {}–{}, not {}", key, min, max, v));
    return v;
  }
  bool boolean(const char* key) {
    used_.insert(key);
    auto it = args_.find(key);
    if (it == args_.end() || !it->is_boolean()) {
      fail(fmt::format("argument \"{}\" must be true or false", key));
      return false;
    }
    return it->get<bool>();
  }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }
  /// The first problem, unknown arguments included.
  std::string finish() {
    for (const auto& [key, value] : args_.items()) {
      if (!used_.contains(key)) fail(fmt::format("argument \"{}\" is not known to this command", key));
    }
    return error_;
  }

 private:
  const json& args_;
  std::set<std::string, std::less<>> used_;
  std::string error_;
};

constexpr std::size_t max_name = 64, max_reason = 200;

}  // namespace

parsed_command parse_command(std::string_view payload) {
  parsed_command out;
  if (payload.size() > max_command_bytes) {
    out.error =
        fmt::format("the command is {} bytes; at most {} are accepted", payload.size(), max_command_bytes);
    return out;
  }
  const auto doc = json::parse(payload, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    out.error = "the command is not a JSON object";
    return out;
  }
  if (auto id = doc.find("id"); id != doc.end() && id->is_string()) out.id = id->get<std::string>();
  if (auto name = doc.find("command"); name != doc.end() && name->is_string())
    out.name = name->get<std::string>();
  for (const auto& [key, value] : doc.items()) {
    if (key != "id" && key != "command" && key != "args" && key != "expires" && key != "issued") {
      out.error =
          fmt::format("field \"{}\" is not part of a command (id, command, issued, args, expires)", key);
      return out;
    }
  }
  if (out.id.empty() || out.id.size() > max_name) {
    out.error = "field \"id\" must be a string of 1–64 characters: the reply carries it back";
    return out;
  }
  if (auto issued = doc.find("issued"); issued != doc.end() && issued->is_string()) {
    out.issued = parse_iso8601(issued->get<std::string>());
  }
  if (!out.issued) {
    out.error =
        "field \"issued\" must be the time the platform issued the command, ISO 8601 with its offset, such "
        "as "
        "\"2026-11-27T15:04:05+08:00\": a command without it could be replayed at any time";
    return out;
  }
  if (auto expires = doc.find("expires"); expires != doc.end()) {
    if (expires->is_string()) out.expires = parse_iso8601(expires->get<std::string>());
    if (!out.expires) {
      out.error =
          "field \"expires\" must be an ISO 8601 time with its offset, such as "
          "\"2026-11-27T15:04:05+08:00\"";
      return out;
    }
  }
  const auto args_it = doc.find("args");
  static const json no_args = json::object();
  if (args_it != doc.end() && !args_it->is_object()) {
    out.error = "field \"args\" must be an object";
    return out;
  }
  args_reader args(args_it == doc.end() ? no_args : *args_it);
  {
    // nlohmann's objects keep their keys sorted: the dump is canonical.
    const auto what = out.name + "\n" + (args_it == doc.end() ? no_args : *args_it).dump();
    out.fingerprint = sha256_hex(what);  // not EVP: see domain/sha256.hpp
  }
  if (out.name == "ack") {
    ack_command c;
    c.alarm_id = args.text("alarm_id", max_name);
    const auto v = args.text("verdict", 8);
    if (auto parsed = parse_verdict(v)) {
      c.verdict = *parsed;
    } else if (!v.empty()) {
      args.fail(fmt::format("argument \"verdict\" must be \"real\", \"false\" or \"test\", not \"{}\"", v));
    }
    c.by = args.text("by", max_name);
    out.body = std::move(c);
  } else if (out.name == "shield") {
    shield_command c;
    c.device = args.text("device", max_name);
    c.length = std::chrono::minutes(args.integer("minutes", 1, 7 * 24 * 60, std::nullopt));
    c.reason = args.text("reason", max_reason);
    c.by = args.text("by", max_name);
    out.body = std::move(c);
  } else if (out.name == "unshield") {
    unshield_command c;
    c.device = args.text("device", max_name);
    c.by = args.text("by", max_name);
    out.body = std::move(c);
  } else if (out.name == "test_mode") {
    test_mode_command c;
    c.device = args.text("device", max_name);
    c.on = args.boolean("on");
    c.length = std::chrono::minutes(args.integer("minutes", 1, 24 * 60, 60));
    c.by = args.text("by", max_name);
    out.body = std::move(c);
  } else if (out.name == "status") {
    out.body = status_command{};
  } else if (out.name == "read") {
    read_command c;
    c.device = args.text("device", max_name);
    c.point = args.text("point", max_name, false);
    out.body = std::move(c);
  } else if (out.name == "self_test") {
    out.body = self_test_command{args.text("by", max_name)};
  } else if (out.name == "config_apply") {
    config_apply_command c;
    c.file = args.text("file", max_command_bytes, false);
    const json& given = args_it == doc.end() ? no_args : *args_it;
    if (auto it = given.find("patch"); it != given.end()) {
      if (it->is_object()) {
        c.patch = it->dump();
      } else {
        args.fail("argument \"patch\" must be an object (docs/remote.md, \"A patch\")");
      }
    }
    args.used("patch");
    if (c.file.empty() == c.patch.empty())
      args.fail(
          "config_apply takes either \"file\" (the whole site file) or \"patch\" (named keys), one of them");
    c.if_revision = args.text("if_revision", 64, false);
    c.by = args.text("by", max_name);
    out.body = std::move(c);
  } else if (out.name == "logs") {
    logs_command c;
    c.lines = static_cast<std::size_t>(args.integer("lines", 1, 5000, 200));
    c.minutes = std::chrono::minutes(args.integer("minutes", 0, 7 * 24 * 60, 0));
    c.level = args.text("level", 16, false);
    if (c.level.empty()) c.level = "info";
    if (c.level != "debug" && c.level != "info" && c.level != "warn" && c.level != "error" &&
        c.level != "critical")
      args.fail(fmt::format(
          "argument \"level\" must be \"debug\", \"info\", \"warn\", \"error\" or \"critical\", not \"{}\"",
          c.level));
    c.max_bytes = static_cast<std::size_t>(args.integer("max_bytes", 1024, 1 << 20, 65536));
    out.body = std::move(c);
  } else if (out.name == "diagnostics") {
    out.body = diagnostics_command{};
  } else if (out.name == "config_confirm") {
    config_confirm_command c;
    c.revision = args.text("revision", 64);
    c.by = args.text("by", max_name);
    out.body = std::move(c);
  } else {
    out.error = out.name.empty() ? "field \"command\" is missing"
                                 : fmt::format("unknown command \"{}\"; the commands are {}", out.name,
                                               fmt::join(config::all_commands, ", "));
    return out;
  }
  out.error = args.finish();
  if (!out.error.empty()) out.body.reset();
  return out;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  std::string hex;
  for (unsigned i = 0; i < length; ++i) hex += fmt::format("{:02x}", mac[i]);
  return hex;
}

std::optional<std::string> open_signed_command(std::string_view payload, std::string_view key,
                                               std::string& error, std::string& id) {
  if (payload.size() > 2 * max_command_bytes) {
    error = fmt::format("the command is {} bytes; at most {} are accepted", payload.size(),
                        2 * max_command_bytes);
    return std::nullopt;
  }
  const auto doc = json::parse(payload, nullptr, false);
  // A bare command's id, for the refusal's reply.
  if (doc.is_object() && doc.contains("id") && doc["id"].is_string()) id = doc["id"].get<std::string>();
  if (!doc.is_object() || doc.size() != 2 || !doc.contains("signed") || !doc["signed"].is_string() ||
      !doc.contains("hmac") || !doc["hmac"].is_string()) {
    error =
        "this gateway takes only signed commands ([uplink.mqtt] command_key_file): send {\"signed\": \"<the "
        "command as JSON text>\", \"hmac\": \"<its HMAC-SHA256 with the gateway's key, in hex>\"}";
    return std::nullopt;
  }
  const auto& text = doc["signed"].get_ref<const std::string&>();
  const auto inner = json::parse(text, nullptr, false);
  if (inner.is_object() && inner.contains("id") && inner["id"].is_string())
    id = inner["id"].get<std::string>();
  const auto expected = hmac_sha256_hex(key, text);
  auto given = doc["hmac"].get<std::string>();
  std::transform(given.begin(), given.end(), given.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (given.size() != expected.size() || CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    error = "the command's hmac does not match: it was not signed with this gateway's key (command_key_file)";
    return std::nullopt;
  }
  return text;
}

std::string command_refusal(const parsed_command& cmd, const std::vector<std::string>& allowed,
                            clock::time_point now, std::chrono::seconds max_age) {
  if (cmd.retained) {
    return "the command is a retained message (the broker's stored copy): a command is carried out only when "
           "it is sent; clear the retained message (publish an empty retained message on the cmd topic)";
  }
  if (std::find(allowed.begin(), allowed.end(), cmd.name) == allowed.end()) {
    return fmt::format("command \"{}\" is not accepted by this gateway (its [uplink.mqtt] commands: {})",
                       cmd.name,
                       allowed.empty() ? std::string("none") : fmt::format("{}", fmt::join(allowed, ", ")));
  }
  if (cmd.issued && *cmd.issued < now - max_age) {
    return fmt::format(
        "the command was issued at {}, more than {} s ago (gateway time {}, [uplink.mqtt] "
        "command_max_age_s): a delayed or replayed command is not carried out; send it again "
        "if it still holds",
        iso8601(*cmd.issued), max_age.count(), iso8601(now));
  }
  if (cmd.issued && *cmd.issued > now + std::chrono::minutes(1)) {
    return fmt::format(
        "the command was issued at {}, ahead of the gateway's clock ({}) by more than a minute: "
        "check both clocks (NTP)",
        iso8601(*cmd.issued), iso8601(now));
  }
  if (cmd.expires && *cmd.expires < now) {
    return fmt::format("the command expired at {} (gateway time {}); send it again if it still holds",
                       iso8601(*cmd.expires), iso8601(now));
  }
  return {};
}

std::string readings_result(std::span<const reading> readings, const std::string& point) {
  auto list = json::array();
  for (const auto& r : readings) {
    if (!point.empty() && r.point != point) continue;
    list.push_back({{"point", r.point},
                    {"value", r.value},
                    {"unit", r.unit},
                    {"quality", r.q == quality::good ? "good" : "bad"},
                    {"time", iso8601(r.time)}});
  }
  return json{{"readings", std::move(list)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string command_reply(const std::string& gateway, const parsed_command& cmd, const std::string& error,
                          std::span<const event> events, clock::time_point now, std::string_view result) {
  json j{{"schema", "firegate.command_reply/1"},
         {"id", cmd.id},
         {"gateway", gateway},
         {"command", cmd.name},
         {"ok", error.empty()},
         {"time", iso8601(now)}};
  if (!error.empty()) j["error"] = error;
  auto ids = json::array();
  for (const auto& e : events) ids.push_back({{"id", e.id}, {"type", to_string(e.kind)}});
  j["events"] = std::move(ids);
  if (!result.empty()) {
    const auto extra = json::parse(result, nullptr, false);
    if (extra.is_object()) j.update(extra);
  }
  // A payload's bytes are echoed only as JSON strings: nlohmann escapes them, and refuses invalid
  // UTF-8 unless told to replace it.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

/// The bytes `s` takes inside a JSON string as command_reply writes it (nlohmann's escapes; invalid
/// UTF-8 replaced).
std::size_t escaped_size(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace).size() - 2;
}

bool continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

/// The character at `at`: its length in bytes and what it costs escaped (an invalid byte alone,
/// replaced by U+FFFD: 3).
std::pair<std::size_t, std::size_t> character_at(std::string_view s, std::size_t at) {
  const auto c = static_cast<unsigned char>(s[at]);
  if (c < 0x80) {
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') return {1, 2};
    return {1, c < 0x20 ? 6 : 1};
  }
  const std::size_t length = c >= 0xC2 && c <= 0xDF   ? 2
                             : c >= 0xE0 && c <= 0xEF ? 3
                             : c >= 0xF0 && c <= 0xF4 ? 4
                                                      : 0;
  if (length == 0 || at + length > s.size()) return {1, 3};
  for (std::size_t i = 1; i < length; ++i) {
    if (!continuation(static_cast<unsigned char>(s[at + i]))) return {1, 3};
  }
  // Overlong forms and surrogates (RFC 3629 §4): invalid, each byte replaced on its own.
  const auto second = static_cast<unsigned char>(s[at + 1]);
  if ((c == 0xE0 && second < 0xA0) || (c == 0xED && second > 0x9F) || (c == 0xF0 && second < 0x90) ||
      (c == 0xF4 && second > 0x8F))
    return {1, 3};
  return {length, length};
}

/// The longest start of `s` (from `at`) whose escaped size is at most `budget`, ending on a
/// character's boundary; at least one character.
std::size_t piece_end(std::string_view s, std::size_t at, std::size_t budget) {
  std::size_t cost = 0, end = at;
  while (end < s.size()) {
    const auto [length, c] = character_at(s, end);
    if (cost + c > budget && end > at) break;
    cost += c;
    end += length;
  }
  return end;
}

}  // namespace

std::vector<std::string> reply_parts(const std::string& gateway, const parsed_command& cmd,
                                     const reply_content& c, std::size_t max_bytes, clock::time_point now) {
  const auto make = [&](std::size_t part, std::size_t parts, json content) {
    json body = c.meta.is_object() ? c.meta : json::object();
    body["part"] = part;
    body["parts"] = parts;
    body[c.field] = std::move(content);
    // Log lines may hold bytes that are not UTF-8 (a sensor's text): replaced, never thrown.
    return command_reply(gateway, cmd, "", {}, now,
                         json{{c.key, std::move(body)}}.dump(-1, ' ', false, json::error_handler_t::replace));
  };
  // What a part costs with nothing in it (its numbers as wide as they can be), and so what is left.
  const auto empty = make(99999, 99999, c.is_text ? json("") : json::array()).size();
  const std::size_t floor = 256;
  const std::size_t budget = max_bytes > empty + floor ? max_bytes - empty : floor;

  std::vector<json> contents;
  if (c.is_text) {
    // Pieces of the text, none cut inside a character.
    std::size_t at = 0;
    do {
      const auto end = piece_end(c.text, at, budget);
      contents.emplace_back(c.text.substr(at, end - at));
      at = end;
    } while (at < c.text.size());
  } else {
    json part = json::array();
    std::size_t used = 0;
    for (const auto& line : c.lines) {
      std::string item = line;
      auto cost = escaped_size(item) + 3;  // its quotes and a comma
      if (cost > budget) {
        // One line longer than a message: its start, marked; shortened until it fits as written.
        const std::string mark = " [cut]";
        std::size_t room = budget > mark.size() + 8 ? budget - mark.size() - 8 : 1;
        do {
          item = line.substr(0, piece_end(line, 0, room)) + mark;
          cost = escaped_size(item) + 3;
          room = room > 64 ? room - 64 : 1;
        } while (cost > budget && room > 1);
      }
      if (used + cost > budget && !part.empty()) {
        contents.push_back(std::move(part));
        part = json::array();
        used = 0;
      }
      part.push_back(std::move(item));
      used += cost;
    }
    contents.push_back(std::move(part));
  }
  std::vector<std::string> out;
  out.reserve(contents.size());
  for (std::size_t i = 0; i < contents.size(); ++i)
    out.push_back(make(i + 1, contents.size(), std::move(contents[i])));
  return out;
}

}  // namespace firegate
