// seckill-cli: asks a running node's admin actor (over CAF remoting, on the
// node's cluster port) for its state, or tells it to create, pause, resume
// or end an item. The logic lives in node/cli.{hpp,cpp}; this file is the
// process around it: argv in, text out, an exit code (0 ok, 1 the node
// refused, 2 bad usage, 3 unreachable or silent).
//
// It must never hang: CAF 0.17's remote_actor can block for a long time on
// a node that accepts TCP but does not answer (SIGSTOPped, overloaded), so
// the connect and the request run on a worker thread and main waits for
// them until one deadline; at the deadline it reports the node as silent
// and leaves with std::_Exit(3), without waiting for the worker or for the
// actor system's shutdown.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include "messages/type_ids.hpp"
#include "node/cli/cli.hpp"
#include "node/tls.hpp"

namespace {

using namespace std::chrono_literals;
using seckill::cli::cli_options;
using seckill::cli::cli_result;

/// Bounds the whole exchange with the node: connect, request, answer.
constexpr auto answer_timeout = 2000ms;
/// After the answer, how long the actor system may take to shut down before
/// the process leaves without it.
constexpr auto shutdown_timeout = 1000ms;

/// What the worker hands to main.
struct exchange {
  std::mutex mtx;
  std::condition_variable cv;
  std::optional<cli_result> result;
  bool worker_done = false;
};

void worker(std::shared_ptr<exchange> ex, cli_options opts) {
  {
    caf::actor_system_config cfg;
    seckill::register_types(cfg);
    cfg.load<caf::io::middleman>();
    if (opts.tls())
      seckill::enable_tls(cfg, {opts.tls_cert, opts.tls_key, opts.tls_ca});
    caf::actor_system sys{cfg};
    auto res = seckill::cli::run_command(sys, opts, answer_timeout);
    {
      std::lock_guard<std::mutex> guard{ex->mtx};
      ex->result = std::move(res);
    }
    ex->cv.notify_all();
  } // the actor system shuts down here
  std::lock_guard<std::mutex> guard{ex->mtx};
  ex->worker_done = true;
  ex->cv.notify_all();
}

void write(std::FILE* f, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), f);
  std::fflush(f);
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

int run(const cli_options& opts) {
  auto ex = std::make_shared<exchange>();
  std::thread thread{worker, ex, opts};
  std::unique_lock<std::mutex> lock{ex->mtx};
  if (!ex->cv.wait_for(lock, answer_timeout,
                       [&] { return ex->result.has_value(); })) {
    write(stderr, seckill::cli::no_answer_message(opts, answer_timeout) + "\n");
    std::_Exit(seckill::cli::exit_unreachable);
  }
  cli_result res = *ex->result;
  write(stdout, res.out);
  write(stderr, res.err);
  if (!ex->cv.wait_for(lock, shutdown_timeout, [&] { return ex->worker_done; }))
    std::_Exit(res.exit_code); // the answer is out; do not hang on shutdown
  lock.unlock();
  thread.join();
  return res.exit_code;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = seckill::cli::parse_args(args, now_ms());
  const auto& opts = parsed.options;
  if (parsed.error.empty() && opts.cmd == seckill::cli::command::help) {
    write(stdout, seckill::cli::usage());
    return seckill::cli::exit_ok;
  }
  if (parsed.error.empty() && opts.cmd == seckill::cli::command::buyer_token) {
    std::string jwt;
    if (auto why = seckill::cli::mint_buyer_token(opts, now_ms(), jwt);
        !why.empty()) {
      write(stderr, "error: " + why + "\n");
      return seckill::cli::exit_usage;
    }
    write(stdout, jwt + "\n");
    return seckill::cli::exit_ok;
  }
  auto options = parsed.options;
  if (parsed.error.empty())
    parsed.error =
      seckill::cli::resolve_token(options, std::getenv("SECKILL_ADMIN_TOKEN"));
  if (parsed.error.empty() && options.tls()) {
    // The node's key names, as the CLI's flags.
    auto why = seckill::check_tls_files(
      {options.tls_cert, options.tls_key, options.tls_ca});
    for (auto [key, flag] : {std::pair{"openssl.certificate", "--tls-cert"},
                             std::pair{"openssl.key", "--tls-key"},
                             std::pair{"openssl.cafile", "--tls-ca"}})
      for (auto at = why.find(key); at != std::string::npos;
           at = why.find(key, at))
        why.replace(at, std::string_view{key}.size(), flag);
    parsed.error = why;
  }
  if (!parsed.error.empty()) {
    std::string text = "error: " + parsed.error + "\n";
    if (opts.cmd == seckill::cli::command::none && args.empty())
      text += "\n" + seckill::cli::usage();
    else
      text += "run 'seckill-cli help' for usage\n";
    write(stderr, text);
    return seckill::cli::exit_usage;
  }
  return run(options);
}
