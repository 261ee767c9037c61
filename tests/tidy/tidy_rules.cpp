// The tidy rules (tidy_rules.hpp): a blanking scanner, the brace walk that
// finds function bodies, the include checks against the layer table read
// from CMakeLists.txt, and the call of clang-format.
#include "tests/tidy/tidy_rules.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>

namespace seckill::tidy {

namespace {

bool is_ident(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
}

int line_at(std::string_view text, std::size_t pos) {
  int line = 1;
  for (std::size_t i = 0; i < pos && i < text.size(); ++i)
    line += text[i] == '\n';
  return line;
}

// Blanks text[from, to) but its line breaks.
void blank(std::string& s, std::size_t from, std::size_t to) {
  for (auto i = from; i < to && i < s.size(); ++i)
    if (s[i] != '\n')
      s[i] = ' ';
}

// The end of a quoted literal opened at `open` (the quote), past its close.
std::size_t literal_end(std::string_view t, std::size_t open) {
  char quote = t[open];
  auto i = open + 1;
  while (i < t.size() && t[i] != quote && t[i] != '\n')
    i += t[i] == '\\' ? 2 : 1;
  return i < t.size() ? i + 1 : t.size();
}

// The end of a raw string literal whose R is at `r`, past its close.
std::size_t raw_literal_end(std::string_view t, std::size_t r) {
  auto paren = t.find('(', r + 2);
  if (paren == std::string_view::npos)
    return t.size();
  std::string close = ")" + std::string(t.substr(r + 2, paren - r - 2)) + "\"";
  auto end = t.find(close, paren);
  return end == std::string_view::npos ? t.size() : end + close.size();
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool starts_with_word(const std::string& s, std::string_view word) {
  return s.compare(0, word.size(), word) == 0
         && (s.size() == word.size() || !is_ident(s[word.size()]));
}

// The head of a declaration without its leading `template <...>` clauses.
std::string without_templates(std::string head) {
  while (starts_with_word(head, "template")) {
    auto open = head.find('<');
    if (open == std::string::npos)
      return head;
    int depth = 0;
    std::size_t i = open;
    for (; i < head.size(); ++i) {
      depth += head[i] == '<';
      depth -= head[i] == '>';
      if (depth == 0)
        break;
    }
    head = trim(std::string_view(head).substr(std::min(i + 1, head.size())));
  }
  return head;
}

bool opens_scope(const std::string& head) {
  for (auto word : {"namespace", "class", "struct", "union", "enum", "extern"})
    if (starts_with_word(head, word))
      return true;
  return false;
}

// A member's brace initializer in a constructor's initializer list: the
// head has the parameter list, then a single ':' and ends in a name.
bool is_member_init(const std::string& head) {
  auto close = head.rfind(')');
  if (close == std::string::npos || head.empty() || !is_ident(head.back()))
    return false;
  for (auto i = head.find(':', close); i != std::string::npos;
       i = head.find(':', i + 2)) {
    if (i + 1 >= head.size() || head[i + 1] != ':')
      return i == 0 || head[i - 1] != ':';
  }
  return false;
}

std::string function_name(const std::string& head) {
  auto paren = head.find('(');
  auto end = paren == std::string::npos ? head.size() : paren;
  while (end > 0 && head[end - 1] == ' ')
    --end;
  auto begin = end;
  while (begin > 0
         && (is_ident(head[begin - 1]) || head[begin - 1] == ':'
             || head[begin - 1] == '~'))
    --begin;
  return head.substr(begin, end - begin);
}

} // namespace

std::string blank_comments_and_literals(std::string_view text) {
  std::string s(text);
  std::size_t i = 0;
  while (i < s.size()) {
    char ch = s[i];
    char next = i + 1 < s.size() ? s[i + 1] : '\0';
    if (ch == '/' && next == '/') {
      auto end = s.find('\n', i);
      end = end == std::string::npos ? s.size() : end;
      blank(s, i, end);
      i = end;
    } else if (ch == '/' && next == '*') {
      auto end = s.find("*/", i + 2);
      end = end == std::string::npos ? s.size() : end + 2;
      blank(s, i, end);
      i = end;
    } else if (ch == 'R' && next == '"' && (i == 0 || !is_ident(s[i - 1]))) {
      auto end = raw_literal_end(s, i);
      blank(s, i + 2, end - 1);
      i = end;
    } else if (ch == '"' || (ch == '\'' && (i == 0 || !is_ident(s[i - 1])))) {
      // A ' after a digit or letter is a digit separator (1'000), not a
      // character literal.
      auto end = literal_end(s, i);
      blank(s, i + 1, end - 1);
      i = end;
    } else {
      ++i;
    }
  }
  return s;
}

std::vector<function_span> function_spans(std::string_view text) {
  enum class kind { scope, function, inner, member_init };
  struct open_brace {
    kind k;
    int line;
    std::string name;
  };
  auto s = blank_comments_and_literals(text);
  std::vector<open_brace> stack;
  std::vector<function_span> out;
  std::string head; // the text since the last ; { or } outside a function
  int line = 1;
  int functions_open = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    if (ch == '\n')
      ++line;
    if (ch == '#' && functions_open == 0) {
      // A directive is no part of a declaration's head: skip its line.
      while (i + 1 < s.size() && s[i + 1] != '\n')
        ++i;
      head.clear();
    } else if (ch == '{') {
      auto h = without_templates(trim(head));
      if (functions_open > 0) {
        stack.push_back({kind::inner, line, {}});
      } else if (is_member_init(h)) {
        stack.push_back({kind::member_init, line, {}});
        head += ' ';
        continue;
      } else if (!opens_scope(h) && h.find(')') != std::string::npos) {
        stack.push_back({kind::function, line, function_name(h)});
        ++functions_open;
      } else {
        stack.push_back({kind::scope, line, {}});
      }
      head.clear();
    } else if (ch == '}') {
      if (stack.empty())
        continue; // unbalanced: the compiler says so, not this check
      auto top = stack.back();
      stack.pop_back();
      if (top.k == kind::member_init)
        continue;
      if (top.k == kind::function) {
        --functions_open;
        out.push_back({top.name, top.line, line});
      }
      head.clear();
    } else if (ch == ';') {
      head.clear();
    } else if (functions_open == 0) {
      head += ch == '\n' ? ' ' : ch;
    }
  }
  return out;
}

void check_function_lengths(const std::string& path, std::string_view text,
                            int lines_max, std::vector<violation>& out) {
  for (const auto& f : function_spans(text))
    if (f.lines() > lines_max)
      out.push_back({path, f.first_line, "length",
                     "function " + f.name + " is " + std::to_string(f.lines())
                       + " lines long, more than "
                       + std::to_string(lines_max)});
}

void check_header_paragraph(const std::string& path, std::string_view text,
                            std::vector<violation>& out) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || text.compare(first, 2, "//") != 0)
    out.push_back({path,
                   line_at(text, first == std::string_view::npos ? 0 : first),
                   "header",
                   "the file does not open with its header paragraph (a //"
                   " comment saying what it is for and what it keeps)"});
}

std::vector<std::pair<int, std::string>>
quoted_includes(std::string_view text) {
  std::vector<std::pair<int, std::string>> out;
  std::istringstream in{std::string(text)};
  std::string row;
  int line = 0;
  while (std::getline(in, row)) {
    ++line;
    auto t = trim(row);
    if (t.rfind("#", 0) != 0)
      continue;
    t = trim(std::string_view(t).substr(1));
    if (!starts_with_word(t, "include"))
      continue;
    auto open = t.find('"');
    auto close = open == std::string::npos ? open : t.find('"', open + 1);
    if (close != std::string::npos)
      out.emplace_back(line, t.substr(open + 1, close - open - 1));
  }
  return out;
}

layer_table read_layers(std::string_view cmake_text) {
  // Without comments: the file's own prose may name the function.
  std::string code;
  std::istringstream in{std::string(cmake_text)};
  for (std::string row; std::getline(in, row);)
    code += row.substr(0, row.find('#')) + "\n";
  std::map<std::string, std::string> folder_by_lib;
  std::map<std::string, std::vector<std::string>> deps_by_lib;
  static constexpr std::string_view call = "seckill_layer(";
  for (auto at = code.find(call); at != std::string::npos;
       at = code.find(call, at + 1)) {
    auto close = code.find(')', at);
    std::istringstream args{
      code.substr(at + call.size(), close - at - call.size())};
    std::string name, folder, word;
    args >> name >> folder;
    bool in_deps = false;
    while (args >> word) {
      if (word == "PUBLIC" || word == "PRIVATE" || word == "SOURCES")
        in_deps = word != "SOURCES";
      else if (in_deps && word.rfind("seckill_", 0) == 0)
        deps_by_lib[name].push_back(word);
    }
    folder_by_lib[name] = folder;
  }
  layer_table out;
  for (const auto& [lib, folder] : folder_by_lib) {
    std::set<std::string> seen;
    std::vector<std::string> todo{lib};
    while (!todo.empty()) {
      auto cur = todo.back();
      todo.pop_back();
      if (!seen.insert(cur).second)
        continue;
      if (auto f = folder_by_lib.find(cur); f != folder_by_lib.end())
        out[folder].insert(f->second);
      for (const auto& d : deps_by_lib[cur])
        todo.push_back(d);
    }
  }
  return out;
}

std::string folder_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string{} : path.substr(0, slash);
}

void check_includes(const std::string& path, std::string_view text,
                    const layer_table& layers, std::vector<violation>& out) {
  auto own = layers.find(folder_of(path));
  for (const auto& [line, inc] : quoted_includes(text)) {
    if (inc.rfind("../", 0) == 0 || inc.find("/../") != std::string::npos
        || inc.rfind("./", 0) == 0) {
      out.push_back(
        {path, line, "include",
         "\"" + inc + "\" is relative: include from the source root"});
      continue;
    }
    if (own == layers.end())
      continue; // tests/ and examples/ see every layer
    auto target = folder_of(inc);
    bool project_folder = layers.count(target) > 0
                          || target.rfind("tests", 0) == 0
                          || target.rfind("examples", 0) == 0;
    if (project_folder && own->second.count(target) == 0)
      out.push_back({path, line, "layer",
                     own->first + "/ may not include \"" + inc + "\" (" + target
                       + "/ is not below it)"});
  }
}

void check_cycles(
  const std::map<std::string, std::vector<std::string>>& includes,
  std::vector<violation>& out) {
  enum class mark { none, open, done };
  std::map<std::string, mark> marks;
  std::vector<std::string> path;
  std::function<void(const std::string&)> visit = [&](const std::string& at) {
    marks[at] = mark::open;
    path.push_back(at);
    auto edges = includes.find(at);
    for (const auto& next : edges->second) {
      if (includes.count(next) == 0)
        continue;
      if (marks[next] == mark::open) {
        std::string ring;
        auto from = std::find(path.begin(), path.end(), next);
        for (auto i = from; i != path.end(); ++i)
          ring += *i + " -> ";
        out.push_back({next, 0, "cycle", "include cycle: " + ring + next});
      } else if (marks[next] == mark::none) {
        visit(next);
      }
    }
    path.pop_back();
    marks[at] = mark::done;
  };
  for (const auto& [file, edges] : includes)
    if (marks[file] == mark::none)
      visit(file);
}

void check_outside_references(const std::string& path, std::string_view text,
                              std::vector<violation>& out) {
  // Spelled in pieces so this file does not name them itself.
  static const std::string needles[] = {
    std::string("DESIGN") + ".md", std::string("DOMAIN") + ".md",
    std::string("STYLE") + ".md", std::string("CAF-0.17") + ".md",
    std::string("../") + "shared"};
  for (const auto& needle : needles)
    for (auto at = text.find(needle); at != std::string_view::npos;
         at = text.find(needle, at + 1))
      out.push_back({path, line_at(text, at), "reference",
                     "names " + needle
                       + ", which is outside the repository: say it here or"
                         " in docs/"});
}

void run_clang_format(const std::vector<std::string>& paths,
                      std::vector<violation>& out) {
  constexpr std::size_t batch_files_max = 40;
  for (std::size_t from = 0; from < paths.size(); from += batch_files_max) {
    std::string cmd = "clang-format --dry-run -Werror --style=file";
    for (auto i = from; i < paths.size() && i < from + batch_files_max; ++i)
      cmd += " '" + paths[i] + "'";
    cmd += " 2>&1";
    auto* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) {
      out.push_back({"clang-format", 0, "format", "cannot run clang-format"});
      return;
    }
    std::set<std::string> reported;
    char buf[4096];
    std::string all;
    while (std::fgets(buf, sizeof(buf), pipe) != nullptr) {
      std::string row = buf;
      all += row;
      auto tag = row.find(": error: code should be clang-formatted");
      if (tag == std::string::npos)
        continue;
      auto file_end = row.find(':');
      auto file = row.substr(0, file_end);
      if (!reported.insert(file).second)
        continue;
      int line = std::atoi(row.c_str() + file_end + 1);
      out.push_back({file, line, "format",
                     "not clang-format clean (clang-format -i " + file + ")"});
    }
    int rc = pclose(pipe);
    if (rc != 0 && reported.empty())
      out.push_back(
        {"clang-format", 0, "format", "clang-format failed: " + trim(all)});
  }
}

} // namespace seckill::tidy
