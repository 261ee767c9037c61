// The test runner: Catch2's main, with spdlog quiet unless SECKILL_LOG names
// a level (trace, debug, info, warn, err), so that a failing test's own
// output is what shows.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>

#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  const char* level = std::getenv("SECKILL_LOG");
  spdlog::set_level(level != nullptr ? spdlog::level::from_str(level)
                                     : spdlog::level::off);
  return Catch::Session().run(argc, argv);
}
