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

}  // namespace firegate
