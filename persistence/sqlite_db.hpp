// A small RAII wrapper of the SQLite C API for the store: a connection, its
// prepared statements (prepared once, reused with reset), and a transaction
// guard. Errors are return values with SQLite's message kept on the
// connection; nothing here throws, logs or aborts.
//
// Invariants: a `statement` never outlives its `database` (the store keeps
// both in one struct, statements declared after the connection); a
// `transaction` that was begun and not committed is rolled back when it goes
// out of scope, so no early return can leave a transaction open.
// It must never be included outside persistence/ (sqlite3.h stays here).
#pragma once

#include <cstdint>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace seckill::sqlite {

class database;

/// SQLite's primary result codes the store reacts to (sqlite3.h stays in the
/// .cpp; a static_assert there keeps these equal to SQLite's).
constexpr int code_constraint = 19; // SQLITE_CONSTRAINT
constexpr int code_full = 13;       // SQLITE_FULL

/// One prepared statement. Parameters are 1-based, columns 0-based, as in
/// SQLite.
class statement {
public:
  enum class step_result { row, done, error };

  statement() = default;
  statement(statement&& other) noexcept;
  statement& operator=(statement&& other) noexcept;
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  ~statement();

  bool valid() const { return stmt_ != nullptr; }

  /// Resets the statement and clears its parameters: call before binding.
  void reset();
  void bind(int index, int64_t value);
  void bind(int index, const std::string& value);

  step_result step();
  /// Steps a statement that returns no rows to its end and resets it.
  bool run();

  int64_t column_int(int index) const;
  std::string column_text(int index) const;

private:
  friend class database;
  explicit statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  sqlite3_stmt* stmt_ = nullptr;
};

/// One connection. Open it with `open`; check `is_open()`.
class database {
public:
  database() = default;
  database(database&& other) noexcept;
  database& operator=(database&& other) noexcept;
  database(const database&) = delete;
  database& operator=(const database&) = delete;
  ~database();

  /// Opens (creating if missing) the file read-write. On failure returns false
  /// and `errmsg()` says why.
  bool open(const std::string& path);
  bool is_open() const { return db_ != nullptr; }

  /// Runs one or more statements without results (schema, pragmas).
  bool exec(const char* sql);
  /// Prepares `sql`; the result is not `valid()` on error.
  statement prepare(const char* sql);
  /// Runs `sql` and returns the first column of its first row as text;
  /// returns false if it fails or yields no row.
  bool query_text(const char* sql, std::string& out);

  void busy_timeout_ms(int timeout_ms);
  /// Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t changes() const;
  /// True between BEGIN and COMMIT/ROLLBACK (SQLite's autocommit is off).
  bool in_transaction() const;
  std::string errmsg() const;
  int errcode() const;
  /// The primary result code of errcode(): SQLite's extended codes say more,
  /// the primary ones say which kind (a full disk, a constraint, ...).
  int primary_errcode() const { return errcode() & 0xff; }

private:
  sqlite3* db_ = nullptr;
  std::string open_error_;
};

/// BEGIN on construction (IMMEDIATE for writers, DEFERRED for a consistent
/// read snapshot), ROLLBACK on destruction unless committed.
class transaction {
public:
  enum class kind { deferred, immediate };

  transaction(database& db, kind k);
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction();

  bool begun() const { return begun_; }
  /// COMMIT; on failure the destructor rolls back whatever is still open.
  bool commit();
  /// ROLLBACK now; returns whether no transaction is left open.
  bool rollback();

private:
  database& db_;
  bool begun_ = false;
};

} // namespace seckill::sqlite
