#include "control_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <istream>

namespace firegate::control {
namespace asio = boost::asio;
using json = nlohmann::json;
using local = asio::local::stream_protocol;

namespace {

std::string user_name(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) return found->pw_name;
  return std::to_string(uid);
}

std::optional<gid_t> group_id(const std::string& name) {
  group gr{};
  group* found = nullptr;
  char buf[4096];
  if (getgrnam_r(name.c_str(), &gr, buf, sizeof buf, &found) == 0 && found != nullptr) return found->gr_gid;
  return std::nullopt;
}

/// The peer's credentials and groups, from the kernel.
std::optional<peer> peer_of(int fd, std::vector<gid_t>& groups) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
  peer p;
  p.uid = cred.uid;
  p.gid = cred.gid;
  p.pid = cred.pid;
  p.user = user_name(cred.uid);
  groups.assign(256, 0);
  socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
  int rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen);
  if (rc != 0 && errno == ERANGE) {  // more groups than room: the kernel said how much it needs
    groups.assign(glen / sizeof(gid_t) + 1, 0);
    glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen);
  }
  if (rc == 0) {
    groups.resize(glen / sizeof(gid_t));
    return p;
  }
  groups.clear();
  // Only where the kernel does not know SO_PEERGROUPS (before 4.13), or cannot give it at the size it
  // asked for (qemu-user's emulation answers ERANGE whatever the size): the groups the peer's user is
  // a member of, from the group database. Any other failure leaves the peer with its primary group
  // alone, so a process that dropped its groups never gains an operator's rights from the database.
  if (errno != ENOPROTOOPT && errno != ERANGE) return p;
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(cred.uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    int n = 256;
    groups.assign(static_cast<std::size_t>(n), 0);
    if (getgrouplist(found->pw_name, found->pw_gid, groups.data(), &n) >= 0) {
      groups.resize(static_cast<std::size_t>(n));
    } else {
      groups.clear();
    }
  }
  return p;
}

}  // namespace

json reply(const json& id, json result) {
  return {{"id", id}, {"ok", true}, {"result", std::move(result)}};
}

json refuse(const json& id, std::string_view code, std::string error) {
  return {{"id", id}, {"ok", false}, {"code", code}, {"error", std::move(error)}};
}

// ---- session --------------------------------------------------------------------------------

session::session(local::socket socket, peer who, server& owner)
    : socket_(std::move(socket)),
      who_(std::move(who)),
      owner_(owner),
      in_(max_request_bytes + 1),
      idle_(socket_.get_executor()) {}

void session::start() {
  arm_idle();
  read_next();
}

void session::send(const json& line, bool droppable) {
  if (closed_) return;
  if (droppable && queued_bytes_ > max_queued_bytes) {
    ++dropped_;
    return;
  }
  if (dropped_ > 0) {
    // The client learns what it missed before the next line it gets.
    auto notice = json{{"dropped", dropped_}}.dump() + "\n";
    dropped_ = 0;
    queued_bytes_ += notice.size();
    out_.push_back(std::move(notice));
  }
  // Text from devices and configuration may not be UTF-8: replaced, never a throw.
  auto text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  queued_bytes_ += text.size();
  out_.push_back(std::move(text));
  write_next();
}

void session::done() {
  busy_ = false;
  streaming_ = false;
  endless_ = false;
  // A client gone mid-answer: no timer may keep the session (and the daemon's loop) alive.
  if (!closed_) arm_idle();
}

bool session::open_stream() {
  if (owner_.open_streams() >= max_streams) return false;
  streaming_ = true;
  endless_ = true;
  return true;
}

void session::close() {
  if (closed_) return;
  closed_ = true;
  idle_.cancel();
  boost::system::error_code ignored;
  socket_.shutdown(local::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void session::arm_idle() {
  // Timing out: the timeout line had this long to reach the client; closed now whatever became of it.
  idle_.expires_after(timing_out_ ? std::chrono::seconds(5) : owner_.idle_timeout_);
  idle_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    if (self->timing_out_) return self->close();
    if (self->busy_) return;
    // Still writing an answer to a slow reader (the end of an export): not idle.
    if (self->writing_ || !self->out_.empty()) return self->arm_idle();
    spdlog::info("control session closed idle user={} pid={} idle_s={}", self->who_.user, self->who_.pid,
                 self->owner_.idle_timeout_.count());
    // Said before it goes, so that the client can tell a timeout from a daemon that stopped.
    self->send(refuse(
        nullptr, "timeout",
        fmt::format("no request for {} s: the connection is closed", self->owner_.idle_timeout_.count())));
    self->busy_ = true;
    self->timing_out_ = true;
    self->out_.push_back({});  // the close marker: closed once the line is written
    self->write_next();
    self->arm_idle();  // ... or after a short grace if the client does not read it
  });
}

void session::read_next() {
  asio::async_read_until(
      socket_, in_, '\n', [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        if (self->closed_) return;
        if (ec == asio::error::not_found) {
          self->send(refuse(nullptr, "bad_request",
                            fmt::format("a request is one line of at most {} bytes", max_request_bytes)));
          self->busy_ = true;  // nothing more is read: closed once this is sent
          self->streaming_ = false;
          self->out_.push_back({});  // the marker: close after the last line
          self->write_next();
          return;
        }
        if (ec) {
          self->close();  // the client went
          return;
        }
        std::string line(n, '\0');
        std::istream(&self->in_).read(line.data(), static_cast<std::streamsize>(n));
        line.pop_back();  // '\n'
        self->on_line(std::move(line));
        self->read_next();
      });
}

void session::on_line(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return;
  if (busy_) {
    send(refuse(nullptr, "busy", "one request at a time on a connection: wait for the answer"));
    return;
  }
  auto doc = json::parse(line, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    send(refuse(nullptr, "bad_request", "a request is a JSON object on one line (docs/control-api.md)"));
    return;
  }
  const auto id = doc.contains("id") ? doc["id"] : json(nullptr);
  auto command = doc.find("command");
  if (command == doc.end() || !command->is_string()) {
    send(refuse(id, "bad_request", "the request has no \"command\" string"));
    return;
  }
  busy_ = true;
  idle_.cancel();
  try {
    owner_.handler_(shared_from_this(), doc);
  } catch (const json::type_error& e) {
    // An argument of the wrong type ("limit": "ten"): the client's mistake, said as such.
    send(refuse(id, "bad_request", fmt::format("an argument has the wrong type: {}", e.what())));
    done();
  } catch (const std::exception& e) {
    spdlog::error("control request failed command={} user={} error=\"{}\"", command->get<std::string>(),
                  who_.user, e.what());
    send(refuse(id, "failed", fmt::format("the daemon could not carry it out: {}", e.what())));
    done();
  }
}

void session::write_next() {
  if (writing_ || out_.empty() || closed_) return;
  if (out_.front().empty()) {  // the close marker
    close();
    return;
  }
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (ec) {
                        self->close();
                        return;
                      }
                      self->queued_bytes_ -= self->out_.front().size();
                      self->out_.pop_front();
                      self->write_next();
                    });
}

// ---- server ---------------------------------------------------------------------------------

server::server(asio::any_io_executor ex, handler h) : ex_(std::move(ex)), handler_(std::move(h)) {}

server::~server() {
  stop();
}

std::string server::start(const std::string& path, const std::string& group,
                          std::chrono::seconds idle_timeout) {
  path_ = path;
  group_ = group;
  idle_timeout_ = idle_timeout;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return fmt::format("{} exists and is not a socket; remove it, or set [control] socket to another path",
                         path);
    }
    // Someone answering there is another daemon: never take its socket away.
    local::socket probe(ex_);
    boost::system::error_code ec;
    probe.connect(local::endpoint(path), ec);
    if (!ec) {
      return fmt::format(
          "another process answers on {} (another firegated?); stop it, or set [control] socket to "
          "another path",
          path);
    }
    ::unlink(path.c_str());  // left by a daemon that did not stop cleanly
  }
  boost::system::error_code ec;
  acceptor_.emplace(ex_);
  acceptor_->open(local(), ec);
  if (!ec) acceptor_->bind(local::endpoint(path), ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.reset();
    const auto folder = std::filesystem::path(path).parent_path().string();
    if (ec == boost::system::errc::no_such_file_or_directory) {
      return fmt::format(
          "cannot create {}: the folder {} does not exist; create it (the package's tmpfiles.d makes "
          "/run/firegate: sudo systemd-tmpfiles --create firegate.conf) or set [control] socket",
          path, folder);
    }
    if (ec == boost::system::errc::permission_denied || ec == boost::system::errc::read_only_file_system) {
      return fmt::format("cannot create {}: {}; let the firegate user write {} or set [control] socket", path,
                         ec.message(), folder);
    }
    return fmt::format("cannot listen on {}: {}", path, ec.message());
  }
  gid_ = group.empty() ? std::nullopt : group_id(group);
  if (!group.empty() && !gid_) {
    spdlog::warn(
        "control group missing group={} socket={} action=\"only root and the daemon's user can use "
        "firegatectl; create the group (the package does) or set [control] group\"",
        group, path);
  }
  // Under the unit the folder is set-group-id and the operators' (systemd/firegate.tmpfiles), so the
  // socket is born in their group and needs no chown, which the unit's system-call filter refuses.
  struct stat born {};
  const bool in_group = gid_ && ::stat(path.c_str(), &born) == 0 && born.st_gid == *gid_;
  if (gid_ && !in_group && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid_) != 0) {
    spdlog::warn(
        "control socket group not set group={} socket={} error=\"{}\" action=\"run firegated as a member "
        "of the group\"",
        group, path, std::strerror(errno));
    gid_.reset();
  }
  ::chmod(path.c_str(), 0660);
  if (::stat(path.c_str(), &st) == 0) inode_ = st.st_ino;
  spdlog::info("control socket listening path={} group={} mode=0660", path,
               gid_ ? group : std::string("(the daemon's)"));
  accept();
  return {};
}

void server::stop() {
  if (acceptor_) {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    acceptor_.reset();
    struct stat st {};
    // Only our own file: a second daemon refused at start must not remove the first one's socket.
    if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
  }
  for (auto& w : sessions_) {
    if (auto s = w.lock()) s->close();
  }
  sessions_.clear();
}

std::size_t server::open_streams() const {
  return static_cast<std::size_t>(std::count_if(sessions_.begin(), sessions_.end(), [](const auto& w) {
    const auto s = w.lock();
    return s && !s->closed_ && s->endless_;
  }));
}

std::optional<std::string> server::refusal(const peer& p) const {
  if (p.uid == 0 || p.uid == ::geteuid()) return std::nullopt;
  const gid_t allowed = gid_.value_or(::getegid());
  if (p.gid == allowed) return std::nullopt;
  return fmt::format(
      "user {} (uid {}) is not in the group {}; a technician joins it with: sudo adduser {} {} (then logs in "
      "again)",
      p.user, p.uid, gid_ ? group_ : std::to_string(allowed), p.user, gid_ ? group_ : "<the daemon's group>");
}

void server::accept() {
  acceptor_->async_accept([this](boost::system::error_code ec, local::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_) return;
    if (!ec) {
      std::vector<gid_t> groups;
      auto who = peer_of(socket.native_handle(), groups);
      std::erase_if(sessions_, [](const std::weak_ptr<session>& w) { return w.expired(); });
      auto s = std::make_shared<session>(std::move(socket), who.value_or(peer{}), *this);
      std::optional<std::string> why;
      if (!who) {
        why = "the daemon could not read the peer's credentials";
      } else {
        why = refusal(*who);
        // Supplementary groups count as the primary one does.
        if (why && std::find(groups.begin(), groups.end(), gid_.value_or(::getegid())) != groups.end())
          why.reset();
      }
      if (why) {
        spdlog::warn("control connection refused user={} uid={} pid={} reason=\"{}\"", s->who().user,
                     s->who().uid, s->who().pid, *why);
        s->send(refuse(nullptr, "permission", *why));
        s->out_.push_back({});
        s->write_next();
      } else if (sessions_.size() >= max_sessions) {
        s->send(refuse(nullptr, "busy",
                       fmt::format("{} firegatectl connections are open already; try again", max_sessions)));
        s->out_.push_back({});
        s->write_next();
      } else {
        sessions_.push_back(s);
        s->start();
      }
    } else {
      spdlog::warn("control accept failed path={} error=\"{}\"", path_, ec.message());
    }
    accept();
  });
}

}  // namespace firegate::control
