#pragma once
// How firegatectl shows the daemon's answers to a person: aligned tables and short lines. With
// --json the answers are printed as they came instead (docs/control-api.md has their schemas).

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace firegatectl {

/// Columns padded to their widest cell; the last column is not padded.
class table {
 public:
  explicit table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.size() == 1; }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

/// j[key] when j is an object that has it, else null: answers from another version of the daemon
/// may lack a field, and a const json's operator[] must not be asked for one it lacks.
const nlohmann::json& field(const nlohmann::json& j, const char* key);

/// "3 s", "4 min", "2 h 05 min", "3 d 2 h"; "-" for null.
std::string age(const nlohmann::json& seconds);
/// A JSON scalar as a person reads it: strings bare, numbers short, null as "-".
std::string text(const nlohmann::json& v);
/// Bytes as "12.3 MiB".
std::string mib(const nlohmann::json& bytes);

void print_status(const nlohmann::json& r, std::ostream& out);
void print_devices(const nlohmann::json& r, std::ostream& out);
void print_device(const nlohmann::json& r, std::ostream& out);
void print_alarms(const nlohmann::json& open, std::ostream& out);
void print_history(const nlohmann::json& events, std::ostream& out);
/// One line of a tail: a reading or an event.
void print_tail_line(const nlohmann::json& line, std::ostream& out);
/// The effective configuration as TOML-like sections.
void print_config(const nlohmann::json& r, std::ostream& out);
/// config history: what is in force, the change waiting, then each change, newest first.
void print_config_history(const nlohmann::json& r, std::ostream& out);

}  // namespace firegatectl
