// The data dir's lock (see data_dir_lock.hpp).
#include "node/data_dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace seckill {

namespace {

std::string read_holder(int fd) {
  char buf[32] = {};
  auto n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string pid = n > 0 ? std::string{buf, static_cast<std::size_t>(n)} : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
    pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

} // namespace

data_dir_lock::~data_dir_lock() {
  if (fd_ >= 0)
    ::close(fd_); // the lock goes with the descriptor
}

std::string data_dir_lock::acquire(const std::string& dir) {
  auto path = dir + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return "cannot open " + path + ": " + std::strerror(errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto why = errno == EWOULDBLOCK
                 ? "data dir " + dir
                     + " is in use by another seckill-node (pid "
                     + read_holder(fd) + ", holding " + path
                     + "); stop it first, or give this node its own "
                       "seckill.data-dir"
                 : "cannot lock " + path + ": " + std::strerror(errno);
    ::close(fd);
    return why;
  }
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0
      || ::pwrite(fd, pid.data(), pid.size(), 0)
           != static_cast<ssize_t>(pid.size())) {
    auto why = "cannot write " + path + ": " + std::strerror(errno);
    ::close(fd);
    return why;
  }
  fd_ = fd;
  return {};
}

} // namespace seckill
