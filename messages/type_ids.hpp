// The one registration block for every type and atom that crosses an actor
// (and later a node) boundary. Both sides of a connection must load it:
// `cfg.add_message_types<caf::id_block::seckill>()`, see register_types().
#pragma once

#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/type_id.hpp>

#include "messages/types.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(seckill, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(seckill, (seckill::item_spec))
CAF_ADD_TYPE_ID(seckill, (seckill::stock_counters))
CAF_ADD_TYPE_ID(seckill, (seckill::item_record))
CAF_ADD_TYPE_ID(seckill, (seckill::order))
CAF_ADD_TYPE_ID(seckill, (seckill::purchase))
CAF_ADD_TYPE_ID(seckill, (seckill::stock_view))
CAF_ADD_TYPE_ID(seckill, (seckill::status_update))
CAF_ADD_TYPE_ID(seckill, (seckill::item_view))
CAF_ADD_TYPE_ID(seckill, (seckill::item_batch))
CAF_ADD_TYPE_ID(seckill, (seckill::queue_view))
CAF_ADD_TYPE_ID(seckill, (seckill::store_stats))
CAF_ADD_TYPE_ID(seckill, (std::vector<seckill::order>))
CAF_ADD_TYPE_ID(seckill, (std::vector<seckill::item_view>))
CAF_ADD_TYPE_ID(seckill, (std::vector<std::string>))
CAF_ADD_TYPE_ID(seckill, (seckill::outcome_event))
CAF_ADD_TYPE_ID(seckill, (seckill::item_detail))
CAF_ADD_TYPE_ID(seckill, (std::vector<seckill::item_detail>))
CAF_ADD_TYPE_ID(seckill, (seckill::http_stats))
CAF_ADD_TYPE_ID(seckill, (seckill::node_status))
CAF_ADD_TYPE_ID(seckill, (seckill::session_summary))
CAF_ADD_TYPE_ID(seckill, (seckill::sessions_view))
CAF_ADD_TYPE_ID(seckill, (seckill::user_item_view))
CAF_ADD_TYPE_ID(seckill, (seckill::unpaid_view))
CAF_ADD_TYPE_ID(seckill, (seckill::user_view))
CAF_ADD_TYPE_ID(seckill, (std::vector<seckill::unpaid_view>))

CAF_ADD_ATOM(seckill, seckill, purchase_atom, "purchase")
CAF_ADD_ATOM(seckill, seckill, pay_atom, "pay")
CAF_ADD_ATOM(seckill, seckill, cancel_atom, "cancel")
CAF_ADD_ATOM(seckill, seckill, order_atom, "order")
CAF_ADD_ATOM(seckill, seckill, stock_atom, "stock")
CAF_ADD_ATOM(seckill, seckill, view_atom, "view")
CAF_ADD_ATOM(seckill, seckill, pause_atom, "pause")
CAF_ADD_ATOM(seckill, seckill, resume_atom, "resume")
CAF_ADD_ATOM(seckill, seckill, end_atom, "end")
CAF_ADD_ATOM(seckill, seckill, subscribe_atom, "subscribe")
CAF_ADD_ATOM(seckill, seckill, status_atom, "status")
CAF_ADD_ATOM(seckill, seckill, commit_atom, "commit")
CAF_ADD_ATOM(seckill, seckill, stats_atom, "stats")
CAF_ADD_ATOM(seckill, seckill, tick_atom, "tick")
CAF_ADD_ATOM(seckill, seckill, create_atom, "create")
CAF_ADD_ATOM(seckill, seckill, lookup_atom, "lookup")
CAF_ADD_ATOM(seckill, seckill, list_atom, "list")
CAF_ADD_ATOM(seckill, seckill, settled_atom, "settled")
CAF_ADD_ATOM(seckill, seckill, sessions_atom, "sessions")
CAF_ADD_ATOM(seckill, seckill, user_atom, "user")
CAF_ADD_ATOM(seckill, seckill, unpaid_atom, "unpaid")
// The cluster.
CAF_ADD_TYPE_ID(seckill, (seckill::item_ref))
CAF_ADD_TYPE_ID(seckill, (std::vector<seckill::item_ref>))
CAF_ADD_TYPE_ID(seckill, (seckill::peer_hello))
CAF_ADD_TYPE_ID(seckill, (seckill::peer_ref))
CAF_ADD_TYPE_ID(seckill, (seckill::routes))
CAF_ADD_TYPE_ID(seckill, (seckill::member_view))
CAF_ADD_TYPE_ID(seckill, (std::vector<seckill::member_view>))
CAF_ADD_ATOM(seckill, seckill, hello_atom, "hello")
CAF_ADD_ATOM(seckill, seckill, adopt_atom, "adopt")
CAF_ADD_ATOM(seckill, seckill, routes_atom, "routes")
CAF_ADD_ATOM(seckill, seckill, relay_atom, "relay")
CAF_ADD_ATOM(seckill, seckill, nodes_atom, "nodes")
CAF_ADD_ATOM(seckill, seckill, owner_atom, "owner")
CAF_ADD_ATOM(seckill, seckill, rate_atom, "rate")
CAF_ADD_ATOM(seckill, seckill, admin_atom, "admin")
CAF_ADD_ATOM(seckill, seckill, peer_atom, "peer")
CAF_ADD_ATOM(seckill, seckill, tables_atom, "tables")
// Plan B: the front gate's limits and the degrade switches.
CAF_ADD_TYPE_ID(seckill, (seckill::switches_view))
CAF_ADD_ATOM(seckill, seckill, switch_atom, "switch")

CAF_END_TYPE_ID_BLOCK(seckill)

namespace seckill {

/// Adds every seckill message type and the error category to `cfg`.
void register_types(caf::actor_system_config& cfg);

} // namespace seckill
