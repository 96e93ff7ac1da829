#pragma once
// Collected configuration errors: validation reports every problem at once, each with the file
// line, the key path and what to do, as "firegate.toml:42 devices[3].unit_id: 300 is outside 1–247".

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::config {

struct config_error {
  std::string file;       ///< set when the error is in another file than the one loaded (a profile)
  std::uint32_t line{0};  ///< 1-based line in the file; 0 when the problem has no single line
  std::string path;       ///< key path such as "devices[3].unit_id"
  std::string message;    ///< what is wrong and what to do
  /// A cause others follow from (a missing profiles folder): listed before everything else.
  bool root_cause{false};
};

/// Owned by one load of one file. Not thread-safe (a load runs on one thread).
class config_errors {
 public:
  void add(std::uint32_t line, std::string path, std::string message);
  /// An error that others follow from: format() lists it first.
  void add_root_cause(std::uint32_t line, std::string path, std::string message);
  /// Errors added while `file` is set name it instead of the loaded file (profiles, includes).
  void set_file(std::string file) { file_ = std::move(file); }
  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }
  const std::vector<config_error>& items() const { return items_; }
  /// One error a line, root causes first, then sorted by file then line: "FILE:LINE PATH: MESSAGE".
  std::string format(std::string_view file) const;
  /// The same, one string a line, without the newlines.
  std::vector<std::string> lines(std::string_view file) const;

 private:
  std::vector<config_error> items_;
  std::string file_;
};

}  // namespace firegate::config
