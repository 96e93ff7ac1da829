// libFuzzer target: platform commands (the cmd topic), which come from outside the box. Any bytes
// must give either a command or a reason, never both and never a crash, and the reply must be JSON;
// the same for the signed envelope.

#include "uplink/mqtt/commands.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto cmd = firegate::parse_command(text);
  if (cmd.body.has_value() == !cmd.error.empty()) std::abort();
  const auto reply = firegate::command_reply("gw", cmd, cmd.error, {}, firegate::clock::time_point{});
  if (!nlohmann::json::accept(reply)) std::abort();
  // The signed envelope (command_key_file): a command only when the HMAC matches, else a reason.
  std::string error, id;
  const auto opened = firegate::open_signed_command(text, "0123456789abcdef0123456789abcdef", error, id);
  if (opened.has_value() == !error.empty()) std::abort();
  return 0;
}
