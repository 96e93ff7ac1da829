#pragma once
// Inside the store only (store.cpp, store_bounds.cpp): a prepared statement that finalises
// itself, and the store's time unit. Not part of the store's interface.

#include "store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace firegate {

/// Renames a damaged database and its WAL files aside (store.cpp).
moved_aside_database move_aside(const std::string& path, std::string reason);

inline std::int64_t to_ms(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// The columns every query of whole events selects, in the order event_of_row reads them.
inline constexpr const char* event_columns =
    "seq, id, kind, device, point, value, time_ms, alarm_id, detail, rule, actor, verdict, repeat, test, "
    "until_ms";

inline std::string column_text(sqlite3_stmt* st, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, col))) : std::string();
}

/// An event from a row that selected event_columns (from column 0).
inline event event_of_row(sqlite3_stmt* st) {
  event e;
  e.seq = static_cast<std::uint64_t>(sqlite3_column_int64(st, 0));
  e.id = column_text(st, 1);
  e.kind = parse_event_kind(column_text(st, 2)).value_or(event_kind::device_fault);
  e.device = column_text(st, 3);
  e.point = column_text(st, 4);
  e.value = sqlite3_column_double(st, 5);
  e.time = clock::time_point(std::chrono::milliseconds(sqlite3_column_int64(st, 6)));
  e.alarm_id = column_text(st, 7);
  e.detail = column_text(st, 8);
  e.rule = column_text(st, 9);
  e.actor = column_text(st, 10);
  e.verdict = column_text(st, 11);
  e.repeat = static_cast<unsigned>(sqlite3_column_int64(st, 12));
  e.test = sqlite3_column_int64(st, 13) != 0;
  if (sqlite3_column_type(st, 14) != SQLITE_NULL) {
    e.until = clock::time_point(std::chrono::milliseconds(sqlite3_column_int64(st, 14)));
  }
  return e;
}

/// A prepared statement that finalises itself.
class store::statement {
 public:
  statement(store& s, const char* sql) : store_(s) {
    if (s.db_ == nullptr) throw store_error(fmt::format("database path={} is not open", s.path_));
    if (sqlite3_prepare_v2(s.db_, sql, -1, &stmt_, nullptr) != SQLITE_OK) s.fail("prepare");
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  /// Binds bytes as a BLOB; SQLite copies them.
  statement& bind_blob(int i, std::string_view v) {
    return check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  /// Binds bytes as a BLOB without a copy: SQLite reads them in step(), so the caller keeps them,
  /// unchanged, until the statement is reset (or gone).
  statement& bind_blob_kept(int i, std::string_view v) {
    return check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  /// true while there is a row.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) store_.fail("step");
    return false;
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::int64_t int64(int col) { return sqlite3_column_int64(stmt_, col); }
  double real(int col) { return sqlite3_column_double(stmt_, col); }
  bool is_null(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  sqlite3_stmt* raw() { return stmt_; }
  std::string text(int col) { return column_text(stmt_, col); }
  /// A BLOB column's bytes, valid until the next step or reset.
  std::string_view blob(int col) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p == nullptr ? std::string_view{}
                        : std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  statement& check(int rc) {
    if (rc != SQLITE_OK) store_.fail("bind");
    return *this;
  }
  store& store_;
  sqlite3_stmt* stmt_{nullptr};
};

}  // namespace firegate
