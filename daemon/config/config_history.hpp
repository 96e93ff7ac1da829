#pragma once
// The configurations the platform sent (docs/remote.md), kept in a folder of the daemon's own: each
// site file's text by its revision, which one is in force, the change waiting for its confirmation,
// and the history of changes. The site file itself (/etc/firegate) is never written: a remote
// configuration stands over it only while the site file is the one it was made over.

#include "domain/reading.hpp"

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace firegate::config {

/// The folder cannot be read or written (the message names the file and what to check).
class history_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One line of the history.
struct config_change {
  /// "applied" (waiting for its confirmation), "confirmed", "rolled_back", "restored" (firegatectl
  /// config rollback), "site_file" (the site file was changed on site and stands again).
  std::string action;
  std::string revision;  ///< the configuration in force after it ("" : the site file)
  std::string previous;  ///< the one before it
  clock::time_point time;
  std::string by;      ///< the command's `by`, or the operator on site
  std::string reason;  ///< a rollback's why
  std::string diff;    ///< config_patch.hpp's diff_summary
};

/// A change applied and not yet confirmed.
struct pending_change {
  std::string revision, previous;
  std::string by, command_id;
  std::string event_id;  ///< its config_changed, which its confirmation or rollback names as alarm_id
  clock::time_point applied, deadline;
  std::string diff;  ///< what it changed (config_patch.hpp's diff_summary)
};

struct history_state {
  /// SHA-256 of the site file's text the remote configuration was made over: when the site file
  /// differs, it was changed on site and stands.
  std::string base;
  std::string active;     ///< the kept revision in force; "" : the site file
  std::string confirmed;  ///< the last confirmed; "" : the site file
  std::optional<pending_change> pending;
  std::vector<config_change> changes;  ///< oldest first, at most max_changes
  static constexpr std::size_t max_changes = 100;
};

/// Every write goes to a temporary file, is synced, and renamed over the old one, then the folder
/// is synced: a power cut leaves the old file or the new, never half of one.
class config_history {
 public:
  explicit config_history(std::filesystem::path dir);
  const std::filesystem::path& dir() const { return dir_; }

  /// The state; an empty one when the folder or its state file does not exist yet. A state file that
  /// does not parse is moved aside (named in the log by the caller through `note`) and an empty state
  /// returned, so the site file stands.
  history_state load(std::string& note) const;
  void save(const history_state& state) const;
  /// Keeps a site file's text under its revision. The oldest kept texts beyond `keep` go, never one
  /// that `state` names (active, confirmed, pending).
  void keep_text(const std::string& revision, const std::string& text, const history_state& state,
                 std::size_t keep = 10) const;
  std::optional<std::string> text_of(const std::string& revision) const;
  /// The kept revisions, newest first.
  std::vector<std::string> kept() const;

 private:
  void write_file(const std::filesystem::path& path, const std::string& bytes) const;
  std::filesystem::path dir_;
};

/// SHA-256 of a site file's text, in hex: what `history_state::base` holds.
std::string text_hash(std::string_view text);

}  // namespace firegate::config
