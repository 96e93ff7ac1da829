// The platform's commands carried out, remembered by id (schema 6), so that none is carried out
// twice: a replayed command, or one the platform sends again after losing the reply, gets the
// first reply again (docs/uplink.md, "Commands").

#include "statement.hpp"

namespace firegate {
namespace {
constexpr auto kept_for = std::chrono::hours(24 * 7);
constexpr std::int64_t kept_at_most = 10000;
}  // namespace

std::optional<std::string> store::command_reply(const std::string& id) {
  statement s(*this, "SELECT reply FROM commands WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void store::remember_command(const std::string& id, const std::string& reply, clock::time_point now) {
  exec("BEGIN");
  try {
    statement add(*this, "INSERT OR REPLACE INTO commands (id, time_ms, reply) VALUES (?, ?, ?)");
    add.bind(1, id).bind(2, to_ms(now)).bind(3, reply);
    add.step();
    statement old(*this, "DELETE FROM commands WHERE time_ms < ?");
    old.bind(1, to_ms(now - kept_for));
    old.step();
    statement over(*this,
                   "DELETE FROM commands WHERE id IN (SELECT id FROM commands ORDER BY time_ms DESC LIMIT -1 "
                   "OFFSET ?)");
    over.bind(1, kept_at_most);
    over.step();
    exec("COMMIT");
  } catch (...) {
    rollback();
    throw;
  }
}

}  // namespace firegate
