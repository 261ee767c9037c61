// Tests of the tidy rules (tests/tidy/tidy_rules.hpp): each rule is shown a
// clean text and the same text with one planted violation, and must pass the
// first and name the second. The clang-format case runs the real program on
// files in a temporary folder with the repository's .clang-format.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "tests/tidy/tidy_rules.hpp"

using namespace seckill::tidy;

namespace {

// A function whose body spans `lines` lines from its `{` to its `}`.
std::string function_of(const std::string& name, int lines) {
  std::string s = "int " + name + "(int x) {\n";
  for (int i = 0; i < lines - 3; ++i)
    s += "  x += 1; // {\n";
  return s + "  return x;\n}\n";
}

std::vector<violation> lengths(const std::string& text) {
  std::vector<violation> out;
  check_function_lengths("a.cpp", text, function_lines_max, out);
  return out;
}

const char* const sample_cmake = R"(
# seckill_layer(not_a_call ...)
seckill_layer(seckill_messages messages SOURCES a.cpp
  PUBLIC CAF::core)
seckill_layer(seckill_base actors/base SOURCES b.cpp PUBLIC seckill_messages)
seckill_layer(seckill_sale actors/sale SOURCES c.cpp
  PUBLIC seckill_base)
seckill_layer(seckill_edge actors/edge SOURCES d.cpp PUBLIC seckill_sale)
)";

} // namespace

TEST_CASE("tidy: the blanker hides comments and literals, keeps lines",
          "[tidy]") {
  auto s = blank_comments_and_literals(
    "a{ // }\n\"}{\" '{' 1'000 R\"x(})x\" /* {\n} */ b}");
  CHECK(std::count(s.begin(), s.end(), '{') == 1);
  CHECK(std::count(s.begin(), s.end(), '}') == 1);
  CHECK(std::count(s.begin(), s.end(), '\n') == 2);
}

TEST_CASE("tidy: a function of 70 lines passes, one of 71 is named", "[tidy]") {
  CHECK(lengths(function_of("fits", function_lines_max)).empty());
  auto found =
    lengths("namespace n {\nstruct s {\n  int member() { return 1; }"
            "\n};\n"
            + function_of("too_long", function_lines_max + 1) + "}\n");
  REQUIRE(found.size() == 1u);
  CHECK(found[0].rule == "length");
  CHECK(found[0].line == 5);
  CHECK(found[0].message.find("too_long is 71 lines") != std::string::npos);
}

TEST_CASE("tidy: function spans see members, templates, lambdas and "
          "constructor initializers",
          "[tidy]") {
  auto spans = function_spans(
    "template <class T>\nT twice(T x) {\n  auto f = [](T y) { return y; };\n"
    "  return f(x) * 2;\n}\n"
    "struct point { int x{0}; int y{0};\n  point(int a) : x{a}, y(a) {\n"
    "    x += 1;\n  }\n};\n"
    "const int table[] = {1, 2};\n");
  REQUIRE(spans.size() == 2u);
  CHECK(spans[0].name == "twice");
  CHECK(spans[0].first_line == 2);
  CHECK(spans[0].last_line == 5);
  CHECK(spans[1].name == "point");
  CHECK(spans[1].first_line == 7);
  CHECK(spans[1].last_line == 9);
}

TEST_CASE("tidy: a file must open with its header paragraph", "[tidy]") {
  std::vector<violation> found;
  check_header_paragraph("ok.cpp", "// What this is for.\n#include <x>\n",
                         found);
  CHECK(found.empty());
  check_header_paragraph("bare.cpp", "\n#include <x>\n// late\n", found);
  check_header_paragraph("block.cpp", "/* not our style */\n", found);
  check_header_paragraph("empty.hpp", "", found);
  REQUIRE(found.size() == 3u);
  CHECK(found[0].path == "bare.cpp");
  CHECK(found[0].line == 2);
  CHECK(found[0].rule == "header");
}

TEST_CASE("tidy: the layers come from CMakeLists.txt's seckill_layer calls",
          "[tidy]") {
  auto layers = read_layers(sample_cmake);
  REQUIRE(layers.size() == 4u);
  CHECK(layers.at("messages") == std::set<std::string>{"messages"});
  CHECK(layers.at("actors/sale")
        == std::set<std::string>{"messages", "actors/base", "actors/sale"});
  CHECK(layers.at("actors/edge").count("actors/base") == 1u);
}

TEST_CASE("tidy: an include the wrong way or a relative one is named",
          "[tidy]") {
  auto layers = read_layers(sample_cmake);
  std::vector<violation> found;
  check_includes("actors/edge/bridge.cpp",
                 "// x\n#include \"actors/sale/item.hpp\"\n#include "
                 "\"messages/types.hpp\"\n#include \"seckill.pb.h\"\n",
                 layers, found);
  check_includes("tests/unit/x_test.cpp", "#include \"actors/edge/bridge.hpp\"",
                 layers, found);
  CHECK(found.empty());
  check_includes("actors/sale/item.cpp",
                 "// x\n#include \"actors/edge/bridge.hpp\"\n#include "
                 "\"tests/support/sim_world.hpp\"\n",
                 layers, found);
  check_includes("messages/types.hpp", "#include \"../actors/sale/item.hpp\"",
                 layers, found);
  REQUIRE(found.size() == 3u);
  CHECK(found[0].rule == "layer");
  CHECK(found[0].line == 2);
  CHECK(found[0].message.find("actors/edge/bridge.hpp") != std::string::npos);
  CHECK(found[1].rule == "layer");
  CHECK(found[2].rule == "include");
}

TEST_CASE("tidy: an include cycle is named, a diamond is not", "[tidy]") {
  std::vector<violation> found;
  check_cycles({{"a.hpp", {"b.hpp", "c.hpp"}},
                {"b.hpp", {"d.hpp"}},
                {"c.hpp", {"d.hpp", "outside.h"}},
                {"d.hpp", {}}},
               found);
  CHECK(found.empty());
  check_cycles(
    {{"a.hpp", {"b.hpp"}}, {"b.hpp", {"c.hpp"}}, {"c.hpp", {"a.hpp"}}}, found);
  REQUIRE(found.size() == 1u);
  CHECK(found[0].rule == "cycle");
  CHECK(found[0].message == "include cycle: a.hpp -> b.hpp -> c.hpp -> a.hpp");
}

TEST_CASE("tidy: a comment pointing outside the repository is named",
          "[tidy]") {
  std::vector<violation> found;
  check_outside_references("a.cpp", "// See docs/ARCHITECTURE.md.\n", found);
  CHECK(found.empty());
  check_outside_references(
    "a.cpp", std::string("// x\n// See ../") + "shared/DESIGN" + ".md.\n",
    found);
  REQUIRE(found.size() == 2u); // the folder and the file
  CHECK(found[0].line == 2);
  CHECK(found[0].rule == "reference");
}

TEST_CASE("tidy: clang-format names a file it would change", "[tidy]") {
  namespace fs = std::filesystem;
  auto dir =
    fs::temp_directory_path() / ("seckill-tidy-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(std::string(SECKILL_SOURCE_DIR) + "/.clang-format",
                dir / ".clang-format", fs::copy_options::overwrite_existing);
  std::ofstream(dir / "clean.cpp") << "// x\nint f(int x) {\n  return x;\n}\n";
  std::ofstream(dir / "messy.cpp") << "// x\nint   f( int x ){return x;}\n";
  std::vector<violation> found;
  run_clang_format({(dir / "clean.cpp").string(), (dir / "messy.cpp").string()},
                   found);
  fs::remove_all(dir);
  REQUIRE(found.size() == 1u);
  CHECK(found[0].rule == "format");
  CHECK(found[0].path == (dir / "messy.cpp").string());
  CHECK(found[0].line == 2);
}
