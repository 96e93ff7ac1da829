#include "config_history.hpp"

#include "domain/sha256.hpp"
#include "domain/time_text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace firegate::config {
namespace {

constexpr const char* state_file = "state.json";

std::string time_text(clock::time_point t) {
  return iso8601(t);
}
clock::time_point time_of(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return {};
  return parse_iso8601(j[key].get<std::string>()).value_or(clock::time_point{});
}
std::string text_of_key(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

/// A kept text's name: a revision is 64 hex digits, and nothing else is taken as a file name.
bool is_revision(std::string_view r) {
  return r.size() == 64 && std::all_of(r.begin(), r.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string text_hash(std::string_view text) {
  return sha256_hex(text);
}

config_history::config_history(std::filesystem::path dir) : dir_(std::move(dir)) {}

history_state config_history::load(std::string& note) const {
  history_state st;
  const auto path = dir_ / state_file;
  std::ifstream in(path, std::ios::binary);
  if (!in) return st;  // nothing sent from the platform yet
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const auto j = nlohmann::json::parse(bytes.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    // Only a damaged disk makes this (every write is whole): the site file stands again.
    const auto aside = dir_ / fmt::format("state.json.damaged-{}", clock::now().time_since_epoch().count());
    std::error_code ec;
    std::filesystem::rename(path, aside, ec);
    note = ec ? fmt::format("{} does not parse, and cannot be moved aside ({}); the site file is in force",
                            path.string(), ec.message())
              : fmt::format("{} does not parse; moved aside to {}; the site file is in force", path.string(),
                            aside.string());
    return st;
  }
  st.base = text_of_key(j, "base");
  st.active = text_of_key(j, "active");
  st.confirmed = text_of_key(j, "confirmed");
  if (j.contains("pending") && j["pending"].is_object()) {
    const auto& p = j["pending"];
    st.pending =
        pending_change{text_of_key(p, "revision"),   text_of_key(p, "previous"), text_of_key(p, "by"),
                       text_of_key(p, "command_id"), text_of_key(p, "event_id"), time_of(p, "applied"),
                       time_of(p, "deadline"),       text_of_key(p, "diff")};
  }
  if (j.contains("changes") && j["changes"].is_array()) {
    for (const auto& c : j["changes"]) {
      if (!c.is_object()) continue;
      st.changes.push_back(config_change{text_of_key(c, "action"), text_of_key(c, "revision"),
                                         text_of_key(c, "previous"), time_of(c, "time"), text_of_key(c, "by"),
                                         text_of_key(c, "reason"), text_of_key(c, "diff")});
    }
  }
  return st;
}

void config_history::save(const history_state& state) const {
  nlohmann::json j{{"base", state.base}, {"active", state.active}, {"confirmed", state.confirmed}};
  if (state.pending) {
    const auto& p = *state.pending;
    j["pending"] = {{"revision", p.revision},
                    {"previous", p.previous},
                    {"by", p.by},
                    {"command_id", p.command_id},
                    {"event_id", p.event_id},
                    {"applied", time_text(p.applied)},
                    {"deadline", time_text(p.deadline)},
                    {"diff", p.diff}};
  }
  auto changes = nlohmann::json::array();
  const auto first = state.changes.size() > history_state::max_changes
                         ? state.changes.size() - history_state::max_changes
                         : 0;
  for (std::size_t i = first; i < state.changes.size(); ++i) {
    const auto& c = state.changes[i];
    changes.push_back({{"action", c.action},
                       {"revision", c.revision},
                       {"previous", c.previous},
                       {"time", time_text(c.time)},
                       {"by", c.by},
                       {"reason", c.reason},
                       {"diff", c.diff}});
  }
  j["changes"] = std::move(changes);
  write_file(dir_ / state_file, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void config_history::keep_text(const std::string& revision, const std::string& text,
                               const history_state& state, std::size_t keep) const {
  if (!is_revision(revision)) throw history_error("not a revision: " + revision);
  write_file(dir_ / (revision + ".toml"), text);
  auto names = kept();
  std::size_t kept_count = 0;
  for (const auto& r : names) {
    const bool named = r == revision || r == state.active || r == state.confirmed ||
                       (state.pending && (r == state.pending->revision || r == state.pending->previous));
    if (++kept_count <= keep || named) continue;
    std::error_code ec;
    std::filesystem::remove(dir_ / (r + ".toml"), ec);
  }
}

std::optional<std::string> config_history::text_of(const std::string& revision) const {
  if (!is_revision(revision)) return std::nullopt;
  std::ifstream in(dir_ / (revision + ".toml"), std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::vector<std::string> config_history::kept() const {
  std::vector<std::pair<std::filesystem::file_time_type, std::string>> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (entry.path().extension() != ".toml" || !is_revision(entry.path().stem().string())) continue;
    found.emplace_back(entry.last_write_time(ec), entry.path().stem().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

void config_history::write_file(const std::filesystem::path& path, const std::string& bytes) const {
  // Its own folder only: a parent that is not there (a missing mount) is not made here.
  std::error_code ec;
  std::filesystem::create_directory(dir_, ec);
  if (ec) {
    throw history_error(fmt::format("cannot make {}: {}; check that firegated may write there ([remote] dir)",
                                    dir_.string(), ec.message()));
  }
  const auto tmp = path.string() + ".tmp";
  const auto fail = [&](const char* what) {
    const auto error = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw history_error(
        fmt::format("cannot {} {}: {}; check the disk's space and that firegated may write "
                    "{}",
                    what, path.string(), error, dir_.string()));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("write");
  for (std::size_t at = 0; at < bytes.size();) {
    const auto n = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      fail("write");
    }
    at += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("sync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("replace");
  // The rename itself reaches the disk with the folder's sync.
  const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace firegate::config
