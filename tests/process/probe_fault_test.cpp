// Fault probes with real seckill-node processes: the faults an operator's
// machine brings, not the ones a test can inject inside the node.
// - A full disk (a small tmpfs filled by another writer): every purchase
//   is answered in time, 201 or 503 store_unavailable with Retry-After
//   (never 500, never a hang); /healthz says the store is failing; once the
//   space is back the node sells again without a restart, makes its
//   reserve again, and sells after a restart on the same volume (issue:
//   the WAL kept the volume full and every purchase stayed 503, also after
//   a restart). Every 201 is in the file, and nothing else is.
// - A read-only data dir at start: the node must not run as if healthy.
// - A hung member (SIGSTOP) of a three-node cluster: its item is answered
//   503 within the hop timeout, the other members' items keep selling;
//   after SIGCONT everything sells out to exactly the total, and every 201
//   is in its owner's file.
// The clients' answers go through the kill-loop's ledger
// (tests/support/ledger_audit.hpp), which checks them against the files.
// Every wait is bounded; every process is stopped by its own pid; a mounted
// tmpfs is unmounted and a stopped child continued on every path (RAII
// guards), so that a failing probe leaves nothing behind. Without the right
// to mount (not root) the tmpfs probes warn and do nothing.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/base/placement.hpp"
#include "messages/limits.hpp"
#include "persistence/store.hpp"
#include "tests/support/ledger_audit.hpp"
#include "tests/support/node_harness.hpp"
#include "tests/support/sim_world.hpp"

using namespace seckill;
using namespace seckill::test;
using namespace seckill::test::probe;

namespace {

// Big enough for the store file, its 4 MiB reserve and a WAL at its 1 MiB
// bound, small enough that a filler fills it in a moment.
constexpr int64_t volume_mib = 10;
constexpr int64_t answer_ms_max = 10'000;     // every purchase answered within
constexpr int64_t client_timeout_ms = 15'000; // beyond the bound: a hang shows
constexpr int64_t fill_wait_ms_max = 10'000;
constexpr int64_t full_phase_ms_max = 20'000;
constexpr int full_refusals_min = 20; // 503s seen while the disk is full
constexpr int healthz_every = 10;     // purchases between two /healthz
constexpr int64_t recover_ms_max = 15'000;
constexpr int64_t recover_poll_ms = 100;
constexpr int sales_before = 20; // before the fault, after it, after restart
constexpr std::size_t filler_chunk_bytes = 64 << 10;
constexpr std::size_t filler_chunk_min_bytes = 4 << 10;
constexpr int64_t filler_pause_ms = 5;
constexpr std::size_t shown_max = 10; // wrong answers printed, at most

// The cluster probe.
constexpr int64_t hop_timeout_ms = 5'000;   // passed to every node
constexpr int64_t stop_wait_ms_max = 2'000; // until every thread stopped
constexpr int64_t hop_margin_ms = 3'000;    // a loaded machine's slack
constexpr int64_t stopped_phase_ms = 8'000;
constexpr int64_t live_pause_ms = 50;       // between two live purchases
constexpr int64_t stopped_pause_ms = 50;    // between two hung purchases
constexpr int64_t cluster_item_total = 400; // more than 8 s of live buyers take
constexpr int64_t cluster_user_limit = 2;
constexpr int limit_probe_every = 5; // every 5th buyer tries one unit too many
constexpr int64_t rejoin_ms_max = 20'000;
constexpr int64_t drive_ms_max = 30'000;
constexpr int transient_retries_max = 50;

/// Limits lifted so that no client is throttled: the probes test the fault,
/// not the rate limits.
std::vector<std::string> fault_args() {
  auto args = unthrottled_args();
  args.push_back("--seckill.hop-timeout-ms=" + std::to_string(hop_timeout_ms));
  return args;
}

/// A tmpfs mounted on `dir` for the guard's life. The data dir is the mount
/// point itself, so that node_process's log (in the data dir's parent)
/// stays on the ordinary disk: it is neither counted in the full volume nor
/// lost with the unmount.
class tmpfs_volume {
public:
  tmpfs_volume(std::string dir, int64_t size_mib)
    : dir_(std::move(dir)), options_("size=" + std::to_string(size_mib) + "m") {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (::mount("none", dir_.c_str(), "tmpfs", 0, options_.c_str()) == 0)
      mounted_ = true;
    else
      error_ = std::strerror(errno);
  }
  ~tmpfs_volume() {
    if (!mounted_)
      return;
    // Lazily if something still holds it: the mount must not outlive us.
    if (::umount2(dir_.c_str(), 0) != 0)
      ::umount2(dir_.c_str(), MNT_DETACH);
  }
  tmpfs_volume(const tmpfs_volume&) = delete;
  tmpfs_volume& operator=(const tmpfs_volume&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }

  /// "" on success, else why not.
  std::string remount(bool read_only) {
    unsigned long flags = MS_REMOUNT;
    if (read_only)
      flags |= MS_RDONLY;
    if (::mount("none", dir_.c_str(), "tmpfs", flags, options_.c_str()) == 0)
      return {};
    return std::strerror(errno);
  }

private:
  std::string dir_;
  std::string options_;
  bool mounted_ = false;
  std::string error_;
};

/// Another writer filling the volume: appends to `path` until ENOSPC, then
/// keeps taking whatever room appears (the node's released reserve
/// included) until stopped. The disk stays full for as long as it runs.
class disk_filler {
public:
  explicit disk_filler(std::string path)
    : path_(std::move(path)), thread_([this] { run(); }) {}
  ~disk_filler() { stop(); }
  disk_filler(const disk_filler&) = delete;
  disk_filler& operator=(const disk_filler&) = delete;

  bool full() const { return full_; }
  int64_t bytes() const { return bytes_; }

  /// Stops the writer and deletes its file: the space is back.
  void remove() {
    stop();
    ::unlink(path_.c_str());
  }

private:
  void stop() {
    stop_ = true;
    if (thread_.joinable())
      thread_.join();
  }

  void run() {
    int fd =
      ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
      return;
    std::string block(filler_chunk_bytes, 'x');
    auto size = filler_chunk_bytes;
    while (!stop_) {
      auto n = ::write(fd, block.data(), size);
      if (n > 0) {
        bytes_ += n;
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno != ENOSPC)
        break;
      full_ = true;
      // The last pages fit only smaller writes; then wait for room.
      if (size > filler_chunk_min_bytes)
        size /= 2;
      else
        pause_ms(filler_pause_ms);
    }
    ::close(fd);
  }

  std::string path_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> full_{false};
  std::atomic<int64_t> bytes_{0};
  std::thread thread_;
};

/// What the clients of a probe were answered, beyond the ledger.
struct answer_tally {
  int64_t sent = 0;
  int64_t created = 0;   // 201
  int64_t store_503 = 0; // 503 store_unavailable with Retry-After
  int64_t slowest_ms = 0;
  std::vector<std::string> wrong; // anything else, and answers too late

  void note_wrong(const std::string& what) {
    if (wrong.size() < shown_max)
      wrong.push_back(what);
    else
      wrong_more += 1;
  }
  int64_t wrong_more = 0;
};

std::string answer_text(const http_reply& r) {
  return std::to_string(r.status) + " " + json_field(r.body, "code")
         + " retry-after='" + r.header("retry-after") + "' "
         + r.body.substr(0, 200);
}

/// One purchase on a full (or refilled) disk: 201, or 503
/// store_unavailable with Retry-After, within answer_ms_max.
http_reply disk_purchase(http_client& c, sale_ledger& book, answer_tally& tally,
                         const purchase_req& q) {
  auto t0 = steady_now_ms();
  auto r = test::purchase(c, q.item_id, q.user_id, q.quantity, q.request_id);
  auto ms = steady_now_ms() - t0;
  book.purchase_answered(q, r, false);
  tally.sent += 1;
  tally.slowest_ms = std::max(tally.slowest_ms, ms);
  if (ms > answer_ms_max)
    tally.note_wrong(q.request_id + " answered after " + std::to_string(ms)
                     + " ms: " + answer_text(r));
  if (r.status == 201)
    tally.created += 1;
  else if (problem_mismatch(r, 503, "store_unavailable").empty()
           && !r.header("retry-after").empty())
    tally.store_503 += 1;
  else
    tally.note_wrong(q.request_id + ": " + answer_text(r));
  return r;
}

/// Buys one unit for a new user.
http_reply buy_new(http_client& c, sale_ledger& book, answer_tally& tally,
                   const std::string& item, int64_t& next_user) {
  auto q = book.make_request(item, "u" + std::to_string(next_user++), 1);
  return disk_purchase(c, book, tally, q);
}

std::string wrong_text(const answer_tally& t) {
  std::string out;
  for (const auto& w : t.wrong)
    out += "\n  " + w;
  if (t.wrong_more > 0)
    out += "\n  ... and " + std::to_string(t.wrong_more) + " more";
  return out;
}

void check_audit(const probe_report& report) {
  INFO(report.summary());
  for (std::size_t i = 0; i < report.faults.size() && i < shown_max; ++i)
    FAIL_CHECK(report.faults[i]);
  for (std::size_t i = 0; i < report.wrong_answers.size() && i < shown_max; ++i)
    FAIL_CHECK(report.wrong_answers[i]);
  CHECK(report.lost == 0);
  CHECK(report.unresolved == 0);
}

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

} // namespace

// -- a full disk
// ---------------------------------------------------------------

namespace {

/// What the full phase saw.
struct full_phase {
  int refusals = 0;        // 503 store_unavailable while full
  int healthz_failing = 0; // /healthz 503 store_failing while full
  int healthz_failed = 0;  // /healthz store_failed: a fault for good
  std::string healthz_last;
};

/// Buys while `filler` keeps the disk full, until enough refusals and a
/// failing /healthz were seen (at most full_phase_ms_max).
full_phase buy_while_full(http_client& c, sale_ledger& book,
                          answer_tally& tally, int64_t& next_user) {
  full_phase out;
  auto deadline = steady_now_ms() + full_phase_ms_max;
  for (int k = 1;
       steady_now_ms() < deadline
       && (out.refusals < full_refusals_min || out.healthz_failing == 0);
       ++k) {
    auto r = buy_new(c, book, tally, "disk", next_user);
    if (r.status == 503)
      out.refusals += 1;
    if (k % healthz_every != 0)
      continue;
    auto h = c.request("GET", "/healthz");
    out.healthz_last = std::to_string(h.status) + " " + h.body;
    if (h.status == 503 && h.body.find("store_failing") != std::string::npos)
      out.healthz_failing += 1;
    if (h.body.find("store_failed") != std::string::npos)
      out.healthz_failed += 1;
  }
  return out;
}

/// After the space came back: buys every recover_poll_ms until a 201 (at
/// most recover_ms_max); the milliseconds it took, or -1.
int64_t wait_selling(http_client& c, sale_ledger& book, answer_tally& tally,
                     int64_t& next_user) {
  auto t0 = steady_now_ms();
  while (steady_now_ms() - t0 < recover_ms_max) {
    if (buy_new(c, book, tally, "disk", next_user).status == 201)
      return steady_now_ms() - t0;
    pause_ms(recover_poll_ms);
  }
  return -1;
}

/// Buys (one a poll) until /healthz is 200 and the reserve is whole again;
/// what is still missing after recover_ms_max, or "".
std::string wait_whole(http_client& c, sale_ledger& book, answer_tally& tally,
                       int64_t& next_user, const std::string& reserve) {
  auto t0 = steady_now_ms();
  std::string missing;
  while (steady_now_ms() - t0 < recover_ms_max) {
    auto h = c.request("GET", "/healthz");
    auto size = file_size(reserve);
    missing.clear();
    if (h.status != 200)
      missing += " healthz=" + std::to_string(h.status) + " " + h.body;
    if (size < limits::store_reserve_bytes)
      missing += " reserve_bytes=" + std::to_string(size);
    if (missing.empty())
      return {};
    buy_new(c, book, tally, "disk", next_user);
    pause_ms(recover_poll_ms);
  }
  return missing;
}

} // namespace

TEST_CASE("fault: a full disk is answered 503 with Retry-After and /healthz "
          "says so - once space is back the node sells again and after a "
          "restart too",
          "[fault][process]") {
  temp_dir tmp;
  tmpfs_volume vol{(tmp.path / "vol").string(), volume_mib};
  if (!vol.mounted()) {
    WARN("skipped: cannot mount tmpfs (" << vol.error()
                                         << "); this probe needs root");
    return;
  }
  const auto& data = vol.dir();
  sale_ledger book{"full"};
  answer_tally tally;
  int64_t next_user = 0;
  full_phase full;
  int64_t filler_bytes = 0;
  int64_t recover_ms = -1;
  std::string whole;
  {
    node_process node{data, fault_args()};
    http_client c{node.http_port(), client_timeout_ms};
    item_def d{"disk", 1'000'000, 1};
    REQUIRE(create_item(c, d).status == 201);
    for (int k = 0; k < sales_before; ++k)
      REQUIRE(buy_new(c, book, tally, "disk", next_user).status == 201);
    {
      disk_filler filler{data + "/filler"};
      auto t0 = steady_now_ms();
      while (!filler.full() && steady_now_ms() - t0 < fill_wait_ms_max)
        pause_ms(10);
      REQUIRE(filler.full());
      full = buy_while_full(c, book, tally, next_user);
      filler_bytes = filler.bytes();
      filler.remove();
    }
    recover_ms = wait_selling(c, book, tally, next_user);
    whole = wait_whole(c, book, tally, next_user, data + "/seckill.db-reserve");
    for (int k = 0; k < sales_before; ++k)
      CHECK(buy_new(c, book, tally, "disk", next_user).status == 201);
    CHECK(node.terminate() == 0);
  }
  {
    // The defect lasted across a restart: the same volume again.
    node_process again{data, fault_args()};
    http_client c{again.http_port(), client_timeout_ms};
    CHECK(c.request("GET", "/healthz").status == 200);
    for (int k = 0; k < sales_before; ++k)
      CHECK(buy_new(c, book, tally, "disk", next_user).status == 201);
    CHECK(again.terminate() == 0);
  }
  auto rec = recover(data + "/seckill.db");
  INFO(rec.error);
  REQUIRE(rec.ok());
  auto report = book.audit(rec.items, {{"disk", 1'000'000, 1, false}});
  std::printf(
    "fault disk-full: purchases=%lld created=%lld store_503=%lld "
    "while_full_503=%d healthz_failing=%d slowest_ms=%lld "
    "filler_bytes=%lld recover_ms=%lld file_orders=%lld\n",
    static_cast<long long>(tally.sent), static_cast<long long>(tally.created),
    static_cast<long long>(tally.store_503), full.refusals,
    full.healthz_failing, static_cast<long long>(tally.slowest_ms),
    static_cast<long long>(filler_bytes), static_cast<long long>(recover_ms),
    static_cast<long long>(report.file_orders));
  std::fflush(stdout);
  INFO("answers that are neither 201 nor 503 store_unavailable with "
       "Retry-After within "
       << answer_ms_max << " ms:" << wrong_text(tally));
  CHECK(tally.wrong.empty());
  INFO("the last /healthz while full: " << full.healthz_last);
  CHECK(full.refusals >= full_refusals_min);
  CHECK(full.healthz_failing > 0);
  CHECK(full.healthz_failed
        == 0); // a full disk passes; it is no fault for good
  CHECK(recover_ms >= 0);
  CHECK(whole == "");
  // Every 201 is in the file, and a refused purchase left nothing.
  CHECK(report.file_orders == tally.created);
  check_audit(report);
}

// -- a read-only data dir
// --------------------------------------------------------

namespace {

std::vector<std::string> plain_node_args(const std::string& dir) {
  auto args = fault_args();
  args.insert(
    args.begin(),
    {"--config-file=" + std::string(SECKILL_SOURCE_DIR) + "/cluster.conf",
     "--seckill.data-dir=" + dir, "--seckill.http-port=0", "--cluster.port=0",
     std::string("--seckill.admin-token=") + node_process::token(),
     "--seckill.synchronous=NORMAL"});
  return args;
}

/// "" if `c`'s node answers `order_id` as `user`'s order, else the answer.
std::string order_mismatch(http_client& c, const std::string& order_id,
                           const std::string& user) {
  auto r = c.request("GET", "/api/v1/orders/" + order_id + "?user_id=" + user);
  if (r.status == 200 && json_field(r.body, "order_id") == order_id
      && json_field(r.body, "user_id") == user)
    return {};
  return "GET " + order_id + ": " + std::to_string(r.status) + " " + r.body;
}

} // namespace

TEST_CASE("fault: a read-only data dir at start is refused with a message "
          "naming it - writable again the node starts with its orders",
          "[fault][process]") {
  temp_dir tmp;
  tmpfs_volume vol{(tmp.path / "vol").string(), volume_mib};
  if (!vol.mounted()) {
    WARN("skipped: cannot mount tmpfs (" << vol.error()
                                         << "); this probe needs root");
    return;
  }
  const auto& data = vol.dir();
  std::string id1;
  std::string id2;
  {
    node_process node{data, fault_args()};
    http_client c{node.http_port()};
    REQUIRE(create_item(c, item_def{"ro", 10, 1}).status == 201);
    auto r1 = test::purchase(c, "ro", "ua", 1, "ra");
    auto r2 = test::purchase(c, "ro", "ub", 1, "rb");
    REQUIRE(r1.status == 201);
    REQUIRE(r2.status == 201);
    id1 = json_field(r1.body, "order_id");
    id2 = json_field(r2.body, "order_id");
    REQUIRE(node.terminate() == 0);
  }
  REQUIRE(vol.remount(true) == "");
  std::string out;
  auto t0 = steady_now_ms();
  int rc = run_process(SECKILL_NODE_BIN, plain_node_args(data), out, 20'000);
  auto refused_ms = steady_now_ms() - t0;
  std::printf("fault read-only: rc=%d after %lld ms: %s", rc,
              static_cast<long long>(refused_ms), out.c_str());
  std::fflush(stdout);
  INFO("the node on the read-only dir said (rc " << rc << "):\n" << out);
  // Today it refuses to start (the data dir's lock cannot be opened for
  // writing). Had it started, it would have to refuse purchases honestly:
  // it must never say node_ready and then acknowledge into a file it
  // cannot write.
  CHECK(out.find("node_ready") == std::string::npos);
  CHECK(rc > 0);
  CHECK(rc < 128); // an answer, not a crash or a timeout
  CHECK(out.find(data) != std::string::npos);
  CHECK(out.find("Read-only file system") != std::string::npos);
  REQUIRE(vol.remount(false) == "");
  {
    node_process node{data, fault_args()};
    http_client c{node.http_port()};
    CHECK(c.request("GET", "/healthz").status == 200);
    CHECK(order_mismatch(c, id1, "ua") == "");
    CHECK(order_mismatch(c, id2, "ub") == "");
    CHECK(test::purchase(c, "ro", "uc", 1, "rc").status == 201);
    CHECK(node.terminate() == 0);
  }
  auto rec = recover(data + "/seckill.db");
  INFO(rec.error);
  REQUIRE(rec.ok());
  REQUIRE(rec.items.size() == 1);
  CHECK(rec.items[0].orders.size() == 3);
  CHECK(rec.items[0].record.counters.sold == 3);
}

// -- a hung member
// -------------------------------------------------------------

namespace {

/// SIGSTOPs a child for the guard's life and SIGCONTs it on every path, so
/// that no later terminate() waits on a frozen process. The pid stays ours
/// (not reaped) while the node_process that owns it lives: declare the
/// guard after the cluster.
class stopped_child {
public:
  explicit stopped_child(pid_t pid) : pid_(pid) {
    stopped_ = pid_ > 0 && ::kill(pid_, SIGSTOP) == 0;
    // kill() returns before every thread has stopped: a request answered
    // meanwhile would be answered by a running node.
    auto deadline = steady_now_ms() + stop_wait_ms_max;
    while (stopped_ && !all_threads_stopped() && steady_now_ms() < deadline)
      pause_ms(1);
  }
  ~stopped_child() { resume(); }
  stopped_child(const stopped_child&) = delete;
  stopped_child& operator=(const stopped_child&) = delete;

  bool stopped() const { return stopped_; }
  void resume() {
    if (stopped_)
      ::kill(pid_, SIGCONT);
    stopped_ = false;
  }

  /// Whether every thread of the child is in state T (stopped), read
  /// from /proc/PID/task/TID/stat.
  bool all_threads_stopped() const {
    std::error_code ec;
    auto dir = "/proc/" + std::to_string(pid_) + "/task";
    std::size_t seen = 0;
    for (const auto& task : std::filesystem::directory_iterator(dir, ec)) {
      std::ifstream in(task.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
      // "TID (comm) S ...": the state follows the last ')'.
      auto close = stat.rfind(')');
      if (close == std::string::npos || close + 2 >= stat.size()
          || stat[close + 2] != 'T')
        return false;
      seen += 1;
    }
    return seen > 0;
  }

private:
  pid_t pid_;
  bool stopped_ = false;
};

/// The answers of one buyer of the hung phase.
struct hung_tally {
  int64_t sent = 0;
  int64_t created = 0;
  int64_t unavailable = 0; // 503 shard_unavailable or timeout
  int64_t slowest_ms = 0;
  std::vector<std::string> wrong;
};

/// Buys `item` through `port` with users b<k>, k from `first` on, whose
/// session lives elsewhere than `hung` (the hung node's sessions are its
/// own fault, not the item's), until `stop`. `expect_created`: every answer
/// must be 201 (a live item), else 503 shard_unavailable (the hung item);
/// both within the hop timeout and its margin.
void hung_buyer(sale_ledger& book, const std::vector<std::string>& ids,
                std::size_t hung, const std::string& item, uint16_t port,
                int64_t first, bool expect_created, std::atomic<bool>& stop,
                hung_tally& out) {
  http_client c{port, client_timeout_ms};
  std::vector<bool> all_live(ids.size(), true);
  for (int64_t k = first; !stop; ++k) {
    auto user = "b" + std::to_string(k);
    if (user_owner(ids, all_live, user) == hung)
      continue;
    auto q = book.make_request(item, user, 1);
    auto t0 = steady_now_ms();
    auto r = test::purchase(c, item, user, 1, q.request_id);
    auto ms = steady_now_ms() - t0;
    book.purchase_answered(q, r, false);
    out.sent += 1;
    out.slowest_ms = std::max(out.slowest_ms, ms);
    auto code = json_field(r.body, "code");
    bool ok =
      expect_created
        ? r.status == 201
        : r.status == 503 && (code == "shard_unavailable" || code == "timeout");
    out.created += r.status == 201 ? 1 : 0;
    out.unavailable += r.status == 503 ? 1 : 0;
    if ((!ok || ms > hop_timeout_ms + hop_margin_ms)
        && out.wrong.size() < shown_max)
      out.wrong.push_back(item + " " + q.request_id + " after "
                          + std::to_string(ms) + " ms: " + answer_text(r));
    pause_ms(expect_created ? live_pause_ms : stopped_pause_ms);
  }
}

/// Sends `q` until the answer is not transient (bounded); records it.
outcome send_recorded(http_client& c, sale_ledger& book, const purchase_req& q,
                      bool retry, http_reply& r) {
  outcome kind = outcome::transient;
  for (int i = 0; i < transient_retries_max && kind == outcome::transient;
       ++i) {
    r = test::purchase(c, q.item_id, q.user_id, q.quantity, q.request_id);
    kind = book.purchase_answered(q, r, retry);
    if (kind == outcome::transient)
      pause_ms(20);
  }
  return kind;
}

/// Retries every lost answer until it is answered for real (at most until
/// `deadline_ms`), through the nodes in turn; the milliseconds until the
/// first retry that was not lost, or -1. `replayed` counts the retries
/// answered 200: the lost attempt itself had placed the order.
int64_t retry_lost(sale_ledger& book, const std::vector<uint16_t>& ports,
                   int64_t deadline_ms, int64_t& replayed) {
  auto t0 = steady_now_ms();
  int64_t first_real_ms = -1;
  std::size_t turn = 0;
  while (steady_now_ms() < deadline_ms) {
    auto pending = book.pending_purchases();
    if (pending.empty())
      break;
    for (const auto& q : pending) {
      http_client c{ports[turn++ % ports.size()], client_timeout_ms};
      http_reply r;
      if (send_recorded(c, book, q, true, r) != outcome::unknown
          && first_real_ms < 0)
        first_real_ms = steady_now_ms() - t0;
      replayed += r.status == 200 ? 1 : 0;
    }
    if (!book.pending_purchases().empty())
      pause_ms(recover_poll_ms);
  }
  return first_real_ms;
}

/// Buys every item to its end with new users through the nodes in turn;
/// every `limit_probe_every`-th user also asks for more than its limit.
/// "" once every item answers sold_out, else the items still on sale.
std::string drive_to_end(sale_ledger& book, const std::vector<item_def>& items,
                         const std::vector<uint16_t>& ports,
                         int64_t deadline_ms) {
  std::vector<std::unique_ptr<http_client>> clients;
  for (auto p : ports)
    clients.push_back(std::make_unique<http_client>(p, client_timeout_ms));
  std::vector<bool> done(items.size(), false);
  int64_t k = 0;
  while (steady_now_ms() < deadline_ms
         && std::count(done.begin(), done.end(), true)
              < static_cast<std::ptrdiff_t>(items.size())) {
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (done[i])
        continue;
      auto& c = *clients[static_cast<std::size_t>(k) % clients.size()];
      auto user = "d" + std::to_string(k++);
      auto q = book.make_request(items[i].item_id, user, 1);
      http_reply r;
      send_recorded(c, book, q, false, r);
      if (r.status == 409 && json_field(r.body, "code") == "sold_out")
        done[i] = true;
      if (r.status == 201 && k % limit_probe_every == 0) {
        auto more =
          book.make_request(items[i].item_id, user, cluster_user_limit);
        send_recorded(c, book, more, false, r);
      }
    }
  }
  std::string left;
  for (std::size_t i = 0; i < items.size(); ++i)
    if (!done[i])
      left += " " + items[i].item_id;
  return left;
}

/// Waits until every other node has logged `peer_up` for `hung` more times
/// than in `before`, and `hung` has logged a new `peer_up` for each of them
/// (counts in `hung_before`). "" on success, else what is missing.
std::string wait_rejoined(cluster_of_three& cluster, std::size_t hung,
                          const std::vector<std::size_t>& before,
                          const std::vector<std::size_t>& hung_before,
                          int64_t timeout_ms) {
  const auto& ids = cluster.ids();
  auto deadline = steady_now_ms() + timeout_ms;
  std::string missing;
  do {
    missing.clear();
    auto mine = cluster.node(hung).log();
    for (std::size_t j = 0; j < cluster_of_three::size; ++j) {
      if (j == hung)
        continue;
      if (count_of(cluster.node(j).log(), "peer_up peer=" + ids[hung] + " ")
          <= before[j])
        missing += " " + ids[j] + " has no new peer_up for " + ids[hung] + ";";
      if (count_of(mine, "peer_up peer=" + ids[j] + " ") <= hung_before[j])
        missing += " " + ids[hung] + " has no new peer_up for " + ids[j] + ";";
    }
    if (missing.empty())
      return {};
    pause_ms(recover_poll_ms);
  } while (steady_now_ms() < deadline);
  return missing;
}

/// The membership lines of every node's log (peer_up, peer_down,
/// peer_unreachable...): what a failure of the hung phase is read from.
std::string peer_events(cluster_of_three& cluster) {
  std::string out;
  for (std::size_t j = 0; j < cluster_of_three::size; ++j) {
    out += "--- " + cluster.ids()[j] + ":\n";
    auto text = cluster.node(j).log();
    std::size_t at = 0;
    while ((at = text.find(" peer_", at)) != std::string::npos) {
      auto bol = text.rfind('\n', at);
      auto eol = text.find('\n', at);
      bol = bol == std::string::npos ? 0 : bol + 1;
      out += text.substr(bol, eol - bol) + "\n";
      at = eol == std::string::npos ? text.size() : eol;
    }
  }
  return out;
}

} // namespace

TEST_CASE("fault: a hung member (SIGSTOP) of a cluster - its item is answered "
          "503 within the hop timeout and the others sell - after SIGCONT the "
          "sale ends exactly",
          "[fault][process][cluster]") {
  temp_dir tmp;
  cluster_of_three cluster(tmp.path.string(), fault_args());
  const auto& ids = cluster.ids();
  // One item on every member.
  std::vector<item_def> items(cluster_of_three::size);
  std::vector<bool> placed(cluster_of_three::size, false);
  for (int k = 0; std::count(placed.begin(), placed.end(), true) < 3; ++k) {
    auto id = "h" + std::to_string(k);
    auto owner = cluster.owner_of(id);
    if (placed[owner])
      continue;
    placed[owner] = true;
    items[owner] = item_def{id, cluster_item_total, cluster_user_limit};
  }
  REQUIRE(cluster.create_items(items) == "");
  const std::size_t hung = 2; // buyers come through the other two
  std::vector<uint16_t> entry{cluster.http_port(0), cluster.http_port(1)};
  sale_ledger book{"hung"};
  std::vector<std::size_t> up_before(cluster_of_three::size, 0);
  std::vector<std::size_t> hung_up_before(cluster_of_three::size, 0);
  for (std::size_t j = 0; j < cluster_of_three::size; ++j) {
    up_before[j] =
      count_of(cluster.node(j).log(), "peer_up peer=" + ids[hung] + " ");
    hung_up_before[j] =
      count_of(cluster.node(hung).log(), "peer_up peer=" + ids[j] + " ");
  }
  // The live members' view of each other, to tell a lost live link from
  // a hung member's harm.
  auto live_downs = [&] {
    return count_of(cluster.node(0).log(), "peer_down peer=" + ids[1] + " ")
           + count_of(cluster.node(1).log(), "peer_down peer=" + ids[0] + " ");
  };
  auto live_downs_before = live_downs();
  std::vector<hung_tally> tallies(4);
  int64_t stopped_ms = 0;
  {
    stopped_child frozen{cluster.node(hung).pid()};
    REQUIRE(frozen.stopped());
    REQUIRE(frozen.all_threads_stopped());
    auto t0 = steady_now_ms();
    std::atomic<bool> stop{false};
    std::vector<std::thread> buyers;
    // The hung item through both entries; each live item through the entry
    // that does not own it, so that every purchase makes a hop.
    buyers.emplace_back(hung_buyer, std::ref(book), std::cref(ids), hung,
                        items[hung].item_id, entry[0], 0, false, std::ref(stop),
                        std::ref(tallies[0]));
    buyers.emplace_back(hung_buyer, std::ref(book), std::cref(ids), hung,
                        items[hung].item_id, entry[1], 1'000'000, false,
                        std::ref(stop), std::ref(tallies[1]));
    buyers.emplace_back(hung_buyer, std::ref(book), std::cref(ids), hung,
                        items[0].item_id, entry[1], 2'000'000, true,
                        std::ref(stop), std::ref(tallies[2]));
    buyers.emplace_back(hung_buyer, std::ref(book), std::cref(ids), hung,
                        items[1].item_id, entry[0], 3'000'000, true,
                        std::ref(stop), std::ref(tallies[3]));
    pause_ms(stopped_phase_ms);
    stop = true;
    for (auto& b : buyers)
      b.join();
    stopped_ms = steady_now_ms() - t0;
    frozen.resume();
  }
  bool live_link_lost = live_downs() > live_downs_before;
  auto t_cont = steady_now_ms();
  std::vector<uint16_t> all{cluster.http_port(0), cluster.http_port(1),
                            cluster.http_port(2)};
  auto rejoin =
    wait_rejoined(cluster, hung, up_before, hung_up_before, rejoin_ms_max);
  auto rejoin_ms = steady_now_ms() - t_cont;
  int64_t replayed = 0;
  auto retried_ms =
    retry_lost(book, all, steady_now_ms() + drive_ms_max, replayed);
  auto left = drive_to_end(book, items, all, steady_now_ms() + drive_ms_max);
  auto sold_ms = steady_now_ms() - t_cont;
  for (std::size_t i = 0; i < cluster_of_three::size; ++i)
    CHECK(cluster.node(i).terminate() == 0);
  std::vector<recovered_item> files;
  for (std::size_t i = 0; i < cluster_of_three::size; ++i) {
    auto rec = recover(cluster.node(i).data_dir() + "/seckill.db");
    INFO(ids[i] << ": " << rec.error);
    REQUIRE(rec.ok());
    for (auto& it : rec.items) {
      CHECK(cluster.owner_of(it.record.spec.item_id) == i);
      files.push_back(std::move(it));
    }
  }
  std::vector<audit_item> audit;
  for (const auto& d : items)
    audit.push_back({d.item_id, d.total, d.per_user_limit, left.empty()});
  auto report = book.audit(files, audit);
  auto events = peer_events(cluster);
  const char* names[] = {"hung-via-0", "hung-via-1", "live-0-via-1",
                         "live-1-via-0"};
  for (std::size_t t = 0; t < tallies.size(); ++t)
    std::printf("fault hung %s: sent=%lld created=%lld unavailable=%lld "
                "slowest_ms=%lld\n",
                names[t], static_cast<long long>(tallies[t].sent),
                static_cast<long long>(tallies[t].created),
                static_cast<long long>(tallies[t].unavailable),
                static_cast<long long>(tallies[t].slowest_ms));
  std::printf(
    "fault hung: stopped_ms=%lld rejoin_ms=%lld first_retry_ms=%lld "
    "retries_replayed=%lld sold_out_ms=%lld\n  %s\n",
    static_cast<long long>(stopped_ms), static_cast<long long>(rejoin_ms),
    static_cast<long long>(retried_ms), static_cast<long long>(replayed),
    static_cast<long long>(sold_ms), report.summary().c_str());
  std::fflush(stdout);
  INFO("the members' peer events:\n" << events);
  // The two live members drop each other only if neither heard the other
  // for middleman.connection-timeout (1 s here): seen only with the machine
  // stalled (2 cores, CPU pressure above 50%), all four links dropping in
  // the same millisecond and the live one back 100 ms later. Then a live
  // item's 503 shard_unavailable is that link's (honest) answer, not the
  // hung member's harm; everything else is still checked.
  if (live_link_lost)
    WARN("the live members lost each other during the hung phase (a stall "
         "longer than connection-timeout?); live items' 503 "
         "shard_unavailable tolerated:\n"
         << events);
  for (std::size_t t = 0; t < tallies.size(); ++t) {
    INFO(names[t]);
    CHECK(tallies[t].sent > 0);
    bool live = t >= 2;
    for (const auto& w : tallies[t].wrong)
      if (!(live && live_link_lost
            && w.find(" 503 shard_unavailable") != std::string::npos))
        FAIL_CHECK(w);
  }
  CHECK(rejoin == "");
  INFO("items still on sale after " << drive_ms_max << " ms:" << left);
  CHECK(left == "");
  check_audit(report);
}
