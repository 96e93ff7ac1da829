// The platform's commands carried out, remembered by id (schema 6), so that none is carried out
// twice: a replayed command, or one the platform sends again after losing the reply, gets the
// first reply again (docs/uplink.md, "Commands").

#include "statement.hpp"

namespace firegate {
namespace {
constexpr auto kept_for = std::chrono::hours(24 * 7);
constexpr std::int64_t kept_at_most = 10000;
}  // namespace

std::map<std::string, store::remembered_command, std::less<>> store::commands_since(clock::time_point since) {
  std::map<std::string, remembered_command, std::less<>> out;
  statement s(*this, "SELECT id, fingerprint, reply, time_ms FROM commands WHERE time_ms >= ?");
  s.bind(1, to_ms(since));
  while (s.step()) {
    out[s.text(0)] = {s.text(1), s.text(2), clock::time_point(std::chrono::milliseconds(s.int64(3)))};
  }
  return out;
}

void store::remember_command(const std::string& id, const remembered_command& c) {
  for (int attempt = 0;; ++attempt) {
    exec("BEGIN");
    try {
      statement add(*this,
                    "INSERT OR REPLACE INTO commands (id, time_ms, fingerprint, reply) VALUES (?, ?, ?, ?)");
      add.bind(1, id).bind(2, to_ms(c.time)).bind(3, c.fingerprint).bind(4, c.reply);
      add.step();
      statement old(*this, "DELETE FROM commands WHERE time_ms < ?");
      old.bind(1, to_ms(c.time - kept_for));
      old.step();
      statement over(
          *this,
          "DELETE FROM commands WHERE id IN (SELECT id FROM commands ORDER BY time_ms DESC LIMIT -1 "
          "OFFSET ?)");
      over.bind(1, kept_at_most);
      over.step();
      exec("COMMIT");
      return;
    } catch (const store_full&) {
      rollback();
      // Room is made from the oldest telemetry, as for an event.
      if (attempt > 0 || !evict_until_under(bounds_.max_bytes * 8 / 10).any()) throw;
    } catch (...) {
      rollback();
      throw;
    }
  }
}

}  // namespace firegate
