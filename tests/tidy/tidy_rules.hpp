// The house rules the tidy test (seckill-tidy, ctest `tidy`) enforces, as
// pure functions of a file's text, so tests plant a violation of each kind in
// a string and see it named. What they check (docs/ARCHITECTURE.md, "Style"):
// - function_lengths: no function of the project's own code is longer than
//   limits below (a body counts from the line of its `{` to that of its `}`);
// - header_paragraph: every source file opens with a `//` paragraph;
// - include rules: no `"../"` include, no include of a folder the file's
//   layer does not link (the layers are read from CMakeLists.txt's
//   seckill_layer calls, so the build and this check share one table), and
//   no cycle among the project's headers;
// - outside_references: no comment points outside the repository (the
//   shared design notes beside it are not there for a reader of the code).
// Formatting is clang-format's: run_clang_format calls the real program.
//
// The scanner knows C++ only as far as these rules need: comments, string,
// character and raw string literals are blanked before braces are counted,
// and a `{` opens a function when no function is open and the text before it
// (since the last `;`, `{` or `}`) has a closing parenthesis and does not
// start a namespace, class, struct, union or enum.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace seckill::tidy {

/// The longest function body this house accepts, in lines.
constexpr int function_lines_max = 70;

struct violation {
  std::string path;
  int line = 0;     // 1-based; 0 for the whole file
  std::string rule; // format, length, header, include, layer, cycle, reference
  std::string message;
};

/// The text with comments and the insides of string and character literals
/// replaced by spaces (line breaks kept, so line numbers stay).
std::string blank_comments_and_literals(std::string_view text);

struct function_span {
  std::string name; // the last identifier before its parameter list
  int first_line = 0;
  int last_line = 0;
  int lines() const { return last_line - first_line + 1; }
};

/// Every function body at namespace or class level (lambdas and local
/// blocks count as part of the function that holds them).
std::vector<function_span> function_spans(std::string_view text);

void check_function_lengths(const std::string& path, std::string_view text,
                            int lines_max, std::vector<violation>& out);

void check_header_paragraph(const std::string& path, std::string_view text,
                            std::vector<violation>& out);

/// The quoted includes of a file, with their 1-based lines.
std::vector<std::pair<int, std::string>> quoted_includes(std::string_view text);

/// Which folders each layer folder may include: its own and those of the
/// seckill_ libraries it links, transitively, read from CMakeLists.txt.
using layer_table = std::map<std::string, std::set<std::string>>;
layer_table read_layers(std::string_view cmake_text);

/// The folder of a path relative to the source root ("actors/sale").
std::string folder_of(const std::string& path);

void check_includes(const std::string& path, std::string_view text,
                    const layer_table& layers, std::vector<violation>& out);

/// Cycles among project files: `includes` maps a path to the paths it
/// includes (relative to the source root).
void check_cycles(
  const std::map<std::string, std::vector<std::string>>& includes,
  std::vector<violation>& out);

void check_outside_references(const std::string& path, std::string_view text,
                              std::vector<violation>& out);

/// Runs `clang-format --dry-run -Werror` on the files (paths as given, from
/// the current directory); one violation per file it would change, or one
/// for the program itself when it cannot run.
void run_clang_format(const std::vector<std::string>& paths,
                      std::vector<violation>& out);

} // namespace seckill::tidy
