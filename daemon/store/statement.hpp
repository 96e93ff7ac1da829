#pragma once
// Inside the store only (store.cpp, store_bounds.cpp): a prepared statement that finalises
// itself, and the store's time unit. Not part of the store's interface.

#include "store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace firegate {

inline std::int64_t to_ms(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// A prepared statement that finalises itself.
class store::statement {
 public:
  statement(store& s, const char* sql) : store_(s) {
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
  std::string text(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
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
