// The node's configuration: the [seckill] section of cluster.conf, then
// `--seckill.KEY=VALUE` arguments over it. CAF 0.17's own config parser
// silently drops a value of the wrong type (from the file and from the
// command line alike, measured) and keeps unknown keys, so seckill reads its
// section itself: every key is known, every value typed and range-checked,
// and the first problem is an error naming the key, the value and what was
// expected. The node refuses to start on it. Other sections are CAF's.
#pragma once

#include <string>
#include <vector>

#include "node/runtime.hpp"

namespace seckill {

struct node_config {
  std::string data_dir = "./data";
  std::string log_level = "info";
  runtime_config runtime; // db_path is set from data_dir
};

/// The keys of [seckill], each with its default, for --help and the docs.
std::vector<std::string> config_keys();

/// Applies the [seckill] section of `ini_text` (`origin` names it in
/// errors). Returns "" or the error.
std::string apply_config_text(const std::string& ini_text,
                              const std::string& origin, node_config& out);

/// Applies one `--seckill.KEY=VALUE` argument (without the leading "--").
std::string apply_config_arg(const std::string& arg, node_config& out);

/// Reads `file` (none if empty; a missing file named explicitly is an
/// error), then every `--seckill.` argument of `args`. Arguments that are
/// not seckill's are appended to `rest`, untouched.
std::string load_config(const std::string& file,
                        const std::vector<std::string>& args, node_config& out,
                        std::vector<std::string>& rest);

} // namespace seckill
