// seckill-tidy: the house rules over the whole tree (tidy_rules.hpp).
// Usage: seckill-tidy [SOURCE_ROOT]. Prints one line per violation,
// `path:line: rule: message`, and exits 1 when there is any, 0 when the tree
// is clean. ctest runs it as `tidy`, so CI fails on a violation.
//
// Which files: every .cpp and .hpp under the project's folders (generated
// and build folders are not walked). Function lengths are checked in the
// project's own code, not in tests/, whose cases are scenarios read top to
// bottom.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/tidy/tidy_rules.hpp"

namespace fs = std::filesystem;
using namespace seckill::tidy;

namespace {

const char* const walked_folders[] = {"messages", "persistence", "actors",
                                      "node",     "examples",    "tests"};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> source_files() {
  std::vector<std::string> out;
  for (const char* folder : walked_folders) {
    if (!fs::exists(folder))
      continue;
    for (const auto& e : fs::recursive_directory_iterator(folder)) {
      auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".cpp" || ext == ".hpp"))
        out.push_back(e.path().generic_string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 2) {
    std::fprintf(stderr, "usage: seckill-tidy [SOURCE_ROOT]\n");
    return 2;
  }
  std::error_code ec;
  fs::current_path(argc == 2 ? argv[1] : ".", ec);
  if (ec || !fs::exists("CMakeLists.txt")) {
    std::fprintf(stderr,
                 "seckill-tidy: %s is not a source root (no "
                 "CMakeLists.txt)\n",
                 argc == 2 ? argv[1] : ".");
    return 2;
  }
  auto layers = read_layers(read_all("CMakeLists.txt"));
  auto files = source_files();
  std::vector<violation> found;
  std::map<std::string, std::vector<std::string>> includes;
  for (const auto& path : files) {
    auto text = read_all(path);
    check_header_paragraph(path, text, found);
    check_includes(path, text, layers, found);
    check_outside_references(path, text, found);
    if (path.rfind("tests/", 0) != 0)
      check_function_lengths(path, text, function_lines_max, found);
    auto& edges = includes[path];
    for (const auto& [line, inc] : quoted_includes(text))
      edges.push_back(inc);
  }
  check_cycles(includes, found);
  run_clang_format(files, found);
  for (const auto& v : found)
    std::printf("%s:%d: %s: %s\n", v.path.c_str(), v.line, v.rule.c_str(),
                v.message.c_str());
  std::printf("seckill-tidy: %zu files, %zu violations\n", files.size(),
              found.size());
  return found.empty() ? 0 : 1;
}
