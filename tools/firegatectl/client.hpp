#pragma once
// firegatectl's side of the control API (docs/control-api.md): one connection to firegated's Unix
// socket, a JSON request a line, JSON lines back. Blocking: a CLI waits for its answer.

#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace firegatectl {

/// Exit codes (docs/firegatectl.md).
enum exit_code : int {
  ok = 0,
  refused = 1,      ///< the daemon answered no (unknown device, bad argument, a command it refused)
  usage = 2,        ///< the command line is wrong
  unreachable = 3,  ///< firegated is not running, or not on this socket
  permission = 4,   ///< the socket is not open to this user
  timeout = 5,      ///< no answer in time (test-alarm: the platform did not acknowledge)
};

/// A failure with the exit code it means and a message that says what to do.
class failure : public std::runtime_error {
 public:
  failure(exit_code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  exit_code code() const { return code_; }

 private:
  exit_code code_;
};

class client {
 public:
  /// Connects; throws failure (unreachable, permission) with what to check.
  explicit client(const std::string& socket_path);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends a request ({"id", "command", "args"}) and returns its final answer (the line with
  /// "ok"). Lines before it (a stream: readings, events, progress, rows) go to `on_line`.
  /// A refusal is returned as it is (ok false); a lost connection throws failure.
  nlohmann::json request(const std::string& command, const nlohmann::json& args = nlohmann::json::object(),
                         const std::function<void(const nlohmann::json&)>& on_line = {});

 private:
  std::string read_line();
  std::string path_;
  int fd_{-1};
  std::string buffer_;
  int next_id_{1};
  bool streamed_{false};  ///< the request under way answers in a stream
};

/// The exit code for a refusal's code ("permission" → 4, "timeout" → 5, else 1).
exit_code code_of(const nlohmann::json& refusal);

}  // namespace firegatectl
