// The SQLite C API behind sqlite_db.hpp's three RAII types. Every call
// reports failure by its return value; the message stays on the connection
// (`errmsg()`) for the caller to log.
#include "persistence/sqlite_db.hpp"

#include <utility>

#include <sqlite3.h>

namespace seckill::sqlite {

static_assert(code_constraint == SQLITE_CONSTRAINT);
static_assert(code_full == SQLITE_FULL);

// -- statement ----------------------------------------------------------------

statement::statement(statement&& other) noexcept
  : stmt_(std::exchange(other.stmt_, nullptr)) {}

statement& statement::operator=(statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

statement::~statement() {
  sqlite3_finalize(stmt_); // a no-op on nullptr
}

void statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
}

void statement::bind(int index, const std::string& value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                    SQLITE_TRANSIENT);
}

statement::step_result statement::step() {
  switch (sqlite3_step(stmt_)) {
    case SQLITE_ROW: return step_result::row;
    case SQLITE_DONE: return step_result::done;
    default: return step_result::error;
  }
}

bool statement::run() {
  auto result = step();
  // Resetting releases the statement's locks and read snapshot at once.
  sqlite3_reset(stmt_);
  return result == step_result::done;
}

int64_t statement::column_int(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

std::string statement::column_text(int index) const {
  auto text = sqlite3_column_text(stmt_, index);
  auto size = sqlite3_column_bytes(stmt_, index);
  if (text == nullptr)
    return {};
  return std::string{reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(size)};
}

// -- database -----------------------------------------------------------------

database::database(database&& other) noexcept
  : db_(std::exchange(other.db_, nullptr)),
    open_error_(std::move(other.open_error_)) {}

database& database::operator=(database&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    open_error_ = std::move(other.open_error_);
  }
  return *this;
}

database::~database() {
  // close_v2 defers the close until the last statement is finalized, so the
  // order in which an owner destroys its members cannot leak the handle.
  sqlite3_close_v2(db_);
}

bool database::open(const std::string& path) {
  sqlite3* db = nullptr;
  auto flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  auto rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    open_error_ = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return false;
  }
  sqlite3_close_v2(db_);
  db_ = db;
  open_error_.clear();
  return true;
}

bool database::exec(const char* sql) {
  return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

statement database::prepare(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                         nullptr)
      != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return statement{};
  }
  return statement{stmt};
}

bool database::query_text(const char* sql, std::string& out) {
  auto stmt = prepare(sql);
  if (!stmt.valid() || stmt.step() != statement::step_result::row)
    return false;
  out = stmt.column_text(0);
  return true;
}

void database::busy_timeout_ms(int timeout_ms) {
  sqlite3_busy_timeout(db_, timeout_ms);
}

int64_t database::changes() const {
  return db_ != nullptr ? sqlite3_changes64(db_) : 0;
}

bool database::in_transaction() const {
  return db_ != nullptr && sqlite3_get_autocommit(db_) == 0;
}

std::string database::errmsg() const {
  if (db_ == nullptr)
    return open_error_.empty() ? "database not open" : open_error_;
  return sqlite3_errmsg(db_);
}

int database::errcode() const {
  return db_ != nullptr ? sqlite3_extended_errcode(db_) : SQLITE_CANTOPEN;
}

// -- transaction --------------------------------------------------------------

transaction::transaction(database& db, kind k) : db_(db) {
  begun_ = db_.exec(k == kind::immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

transaction::~transaction() {
  rollback();
}

bool transaction::commit() {
  if (!begun_ || !db_.exec("COMMIT"))
    return false;
  begun_ = false;
  return true;
}

bool transaction::rollback() {
  // SQLite rolls back by itself after some errors (a full disk, an I/O
  // error); ROLLBACK is needed only while a transaction is still open.
  if (begun_ && db_.in_transaction())
    db_.exec("ROLLBACK");
  begun_ = false;
  return !db_.in_transaction();
}

} // namespace seckill::sqlite
