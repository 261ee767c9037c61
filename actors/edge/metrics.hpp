// /metrics in Prometheus' text format (version 0.0.4), as a pure function
// of the bridges' counters, the node's status and its items, so a test can
// check the text without a node. Label values are escaped (backslash,
// quote, newline); an item id is already restricted to [A-Za-z0-9_-].
#pragma once

#include <string>
#include <vector>

#include "actors/cluster/relay.hpp"
#include "actors/edge/buyer_gate.hpp"
#include "actors/edge/counters.hpp"
#include "actors/edge/front_gate.hpp"
#include "messages/types.hpp"

namespace seckill {

/// `remote`: the node's relay counters (null: a node alone, none written);
/// `members`: the cluster as this node sees it (one entry: a node alone);
/// `gate`: the front gate's counters (null: none written) and `switches`
/// the limits and switches as set now.
std::string format_metrics(const bridge_counters& counters,
                           const node_status& status,
                           const std::vector<item_detail>& items,
                           const relay_counters* remote = nullptr,
                           const std::vector<member_view>& members = {},
                           const gate_counters* gate = nullptr,
                           const switches_view& switches = {},
                           buyer_gate* buyers = nullptr);

} // namespace seckill
