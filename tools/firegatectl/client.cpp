#include "client.hpp"

#include <fmt/format.h>

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace firegatectl {
using json = nlohmann::json;

namespace {

/// The group that owns the socket file: the one to join.
std::string socket_group(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "firegate";
  group gr{};
  group* found = nullptr;
  char buf[4096];
  if (getgrgid_r(st.st_gid, &gr, buf, sizeof buf, &found) == 0 && found != nullptr) return found->gr_name;
  return std::to_string(st.st_gid);
}

}  // namespace

client::client(const std::string& socket_path) : path_(socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    throw failure(usage, fmt::format("{} is too long for a Unix socket path", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw failure(unreachable, fmt::format("cannot make a socket: {}", std::strerror(errno)));
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return;
  const int err = errno;
  ::close(fd_);
  fd_ = -1;
  switch (err) {
    case ENOENT:
      throw failure(unreachable,
                    fmt::format("firegated is not running: there is no control socket at {}. Start it "
                                "(sudo systemctl start firegated), or give --socket (or FIREGATE_SOCKET) "
                                "when [control] socket is elsewhere",
                                socket_path));
    case ECONNREFUSED:
      throw failure(unreachable,
                    fmt::format("firegated is not running: nothing answers on {} (left by a daemon that "
                                "stopped). Start it: sudo systemctl start firegated; see its log: "
                                "journalctl -u firegated",
                                socket_path));
    case EACCES:
    case EPERM: {
      const auto group = socket_group(socket_path);
      throw failure(permission,
                    fmt::format("permission denied on {}: only members of the group {} may use firegatectl. "
                                "Join it (sudo adduser $USER {}, then log in again), or run it with sudo",
                                socket_path, group, group));
    }
    default:
      throw failure(unreachable, fmt::format("cannot connect to {}: {}", socket_path, std::strerror(err)));
  }
}

client::~client() {
  if (fd_ >= 0) ::close(fd_);
}

std::string client::read_line() {
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      auto line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    char chunk[65536];
    const auto n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 && streamed_) {
      // A tail or an export under way: the daemon went (stopped, restarted, or failed).
      throw failure(unreachable, fmt::format("firegated stopped: its connection on {} closed during the "
                                             "stream. Is it running? systemctl status firegated; its log: "
                                             "journalctl -u firegated",
                                             path_));
    }
    if (n <= 0) {
      throw failure(unreachable, fmt::format("firegated closed the connection on {} before answering; see "
                                             "its log: journalctl -u firegated",
                                             path_));
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

json client::request(const std::string& command, const json& args,
                     const std::function<void(const json&)>& on_line) {
  const auto id = next_id_++;
  // A stream (tail, export, test-alarm's progress) that ends without its last line: the daemon went.
  streamed_ = static_cast<bool>(on_line);
  auto text = json{{"id", id}, {"command", command}, {"args", args}}.dump() + "\n";
  std::size_t off = 0;
  while (off < text.size()) {
    const auto n = ::send(fd_, text.data() + off, text.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // Refused at the door (a user outside the group, too many connections): the daemon said why
      // and closed before reading the request.
      const int err = errno;
      try {
        auto said = json::parse(read_line(), nullptr, false);
        if (said.is_object() && said.contains("ok")) return said;
      } catch (const failure&) {
      }
      throw failure(unreachable, fmt::format("cannot send to {}: {}", path_, std::strerror(err)));
    }
    off += static_cast<std::size_t>(n);
  }
  for (;;) {
    auto line = json::parse(read_line(), nullptr, false);
    if (line.is_discarded() || !line.is_object()) {
      throw failure(refused,
                    "firegated answered with something that is not JSON: is this a firegated socket?");
    }
    if (line.contains("ok")) {
      // A refusal before any request was read (permission, too many connections) has no id.
      if (line.value("ok", false) || line["id"] == id || line["id"].is_null()) return line;
      continue;
    }
    if (on_line) on_line(line);
  }
}

exit_code code_of(const json& refusal) {
  const auto code = refusal.value("code", std::string());
  if (code == "permission") return permission;
  if (code == "timeout") return timeout;
  return refused;
}

}  // namespace firegatectl
