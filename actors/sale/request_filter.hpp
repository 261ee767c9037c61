// The request filter: a Bloom filter over the request ids of an item's
// orders, sent by the item with a refusing status (sold_out, ended, paused)
// to every admission queue. A queue refuses a purchase by the status alone
// only if the filter says its request id was never ordered; a retry of an
// order placed through another node's queue (whose own memory this queue
// lacks) therefore reaches the item and gets its order back, instead of
// sold_out for a purchase that was taken. A false positive costs one hop to
// the item, which answers with the status; there are no false negatives.
// 16 bits per order, 11 probes: about 1 false positive in 2,000 ids; at
// the most orders an item keeps (2,000,000) the filter is 4 MB, sent once
// per node and status change.
// Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace seckill {

/// Words of a filter for `count` ids (0 for none).
std::size_t filter_words(std::size_t count);

/// Adds one id to `bits` (filter_words(count) words, for `count` ids).
void add_to_filter(std::vector<uint64_t>& bits, const std::string& request_id);

/// Whether `request_id` may be in the filter (false: it certainly is not).
bool filter_may_hold(const std::vector<uint64_t>& bits,
                     const std::string& request_id);

/// The filter of `request_ids` (empty if there are none).
std::vector<uint64_t>
make_request_filter(const std::vector<std::string>& request_ids);

} // namespace seckill
