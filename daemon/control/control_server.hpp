#pragma once
// The local control API (docs/control-api.md): a Unix stream socket where firegatectl sends one JSON
// request a line and reads JSON lines back. This file is the transport only: the socket (mode 0660,
// a group), the peer's credentials, size limits, one session per connection. What each request does
// is the application's control API (app/control_api.hpp). Everything runs on the daemon's loop.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace firegate::control {

/// Who is on the other end, from the kernel (SO_PEERCRED): not what the client says.
struct peer {
  uid_t uid{0};
  gid_t gid{0};
  pid_t pid{0};
  std::string user;  ///< the uid's login name, or the number when it has none
};

/// One request line at most; a longer one is refused and the connection closed.
inline constexpr std::size_t max_request_bytes = 64 * 1024;
/// Connections at once; more are refused with a message.
inline constexpr std::size_t max_sessions = 16;
/// Of those, at most this many stream without end (tail, export): the others stay for commands, so
/// a room full of tails never locks out the technician who must acknowledge or shield.
inline constexpr std::size_t max_streams = 12;
/// Replies waiting to be read by a slow client at most; past it, streamed lines are dropped and
/// counted (a `tail` on a slow link must not grow the daemon's memory).
inline constexpr std::size_t max_queued_bytes = 4 * 1024 * 1024;

class server;

/// One connection. Requests are answered in turn; a streaming answer (tail, export, test_alarm)
/// keeps the session until it ends or the client goes.
class session : public std::enable_shared_from_this<session> {
 public:
  session(boost::asio::local::stream_protocol::socket socket, peer who, server& owner);
  const peer& who() const { return who_; }
  /// Queues one line. A line queued when more than max_queued_bytes wait is dropped (counted, and
  /// said in the next line that fits) when `droppable`; a final answer is never dropped.
  void send(const nlohmann::json& line, bool droppable = false);
  /// The answer to the request under way is complete: the next request is read.
  void done();
  /// A streaming answer: no idle timeout until done().
  void streaming() { streaming_ = true; }
  /// A stream without end (tail, export): false, and nothing changed, when max_streams are open.
  [[nodiscard]] bool open_stream();
  /// The client has gone (or the server stopped): streams stop sending.
  bool closed() const { return closed_; }
  /// Bytes queued and not yet written to the client.
  std::size_t queued_bytes() const { return queued_bytes_; }
  void close();
  void start();

 private:
  void read_next();
  void on_line(std::string line);
  void write_next();
  void arm_idle();
  friend class server;

  boost::asio::local::stream_protocol::socket socket_;
  peer who_;
  server& owner_;
  boost::asio::streambuf in_;
  boost::asio::steady_timer idle_;
  std::deque<std::string> out_;
  std::size_t queued_bytes_{0};
  std::uint64_t dropped_{0};
  bool writing_{false};
  bool busy_{false};  ///< a request is under way
  bool streaming_{false};
  bool endless_{false};     ///< a tail or an export
  bool timing_out_{false};  ///< idle too long: the timeout line is on its way, then the close
  bool closed_{false};
};

/// Listens on the socket and hands each request to the handler with its session.
class server {
 public:
  /// `request` is a JSON object with a string "command" (checked here); the handler answers
  /// through the session (reply()/refuse() below, then done()).
  using handler = std::function<void(const std::shared_ptr<session>& s, const nlohmann::json& request)>;

  server(boost::asio::any_io_executor ex, handler h);
  ~server();
  /// Binds `path` (mode 0660, group `group` when it exists; empty: the daemon's). A stale socket
  /// file is replaced; one another process answers on is not. Returns "" or what went wrong, with
  /// what to check.
  std::string start(const std::string& path, const std::string& group,
                    std::chrono::seconds idle_timeout = std::chrono::seconds(120));
  /// Closes the socket and every session; removes the socket file it made.
  void stop();
  const std::string& path() const { return path_; }

 private:
  friend class session;
  void accept();
  std::optional<std::string> refusal(const peer& p) const;
  std::size_t open_streams() const;

  boost::asio::any_io_executor ex_;
  handler handler_;
  std::optional<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::string path_;
  std::string group_;
  std::chrono::seconds idle_timeout_{120};
  std::optional<gid_t> gid_;  ///< the control group's
  ino_t inode_{0};            ///< the socket file made, so that stop() removes only its own
  std::vector<std::weak_ptr<session>> sessions_;
};

/// The reply to the request `id`: {"id", "ok": true, "result"}.
nlohmann::json reply(const nlohmann::json& id, nlohmann::json result);
/// A refusal: {"id", "ok": false, "code", "error"}. Codes (docs/control-api.md): bad_request,
/// unknown_command, unknown_device, refused, failed, timeout, permission, busy.
nlohmann::json refuse(const nlohmann::json& id, std::string_view code, std::string error);

}  // namespace firegate::control
