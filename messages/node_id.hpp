// The syntax of a cluster member's id (cluster.nodes, seckill.node-id): 1 to
// limits::node_id_length_max letters, digits, '-' or '_'. The one check,
// used by the config reader and the membership's parser of member texts.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>

#include "messages/limits.hpp"

namespace seckill {

inline bool valid_node_id(const std::string& id) {
  return !id.empty() && id.size() <= limits::node_id_length_max
         && std::all_of(id.begin(), id.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '-'
                     || c == '_';
            });
}

/// What valid_node_id accepts, for error messages.
inline std::string node_id_syntax() {
  return "1 to " + std::to_string(limits::node_id_length_max)
         + " letters, digits, '-' or '_'";
}

} // namespace seckill
