// The data dir belongs to one process: `DATA_DIR/lock`, held with flock(2)
// for the life of the process, so a second seckill-node on the same dir
// refuses to start (exit 2) and names the holder's pid, instead of opening
// the same SQLite file and selling the same stock twice. The kernel drops
// the lock when the process dies, kill -9 included: no stale lock to clean.
// The file holds the holder's pid (for the message; the lock, not the pid,
// decides). SQLite's exclusive locking mode guards the file itself as well
// (persistence/store.hpp).
#pragma once

#include <string>

namespace seckill {

class data_dir_lock {
public:
  data_dir_lock() = default;
  data_dir_lock(const data_dir_lock&) = delete;
  data_dir_lock& operator=(const data_dir_lock&) = delete;
  ~data_dir_lock(); // releases the lock

  /// Takes the lock of `dir` (which must exist). Returns an empty string on
  /// success, else why not, naming the holder's pid when another process
  /// holds it.
  std::string acquire(const std::string& dir);

  bool held() const { return fd_ >= 0; }

private:
  int fd_ = -1;
};

} // namespace seckill
