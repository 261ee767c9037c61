// seckill-bench's pure pieces: the latency histogram keeps its promise
// (percentiles within the bucket error, the exact maximum, a bounded size),
// the outcome table stays bounded, and the response parser takes exactly
// one response, waits for a partial one and refuses a broken one.
#include <catch2/catch.hpp>

#include <string>

#include "examples/bench_http.hpp"
#include "examples/bench_stats.hpp"

using namespace bench;

TEST_CASE("bench: histogram percentiles within 1.6%, exact max", "[bench]") {
  latency_histogram h;
  CHECK(h.percentile_us(99) == 0);
  for (uint64_t us = 1; us <= 100'000; ++us)
    h.record(us); // uniform: percentile p is p * 1000 us
  CHECK(h.count() == 100'000);
  CHECK(h.max_us() == 100'000);
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    auto want = static_cast<double>(p * 1'000);
    auto got = static_cast<double>(h.percentile_us(p));
    INFO("p" << p << ": " << got << " us, want " << want);
    CHECK(got >= want * 0.984);
    CHECK(got <= want * 1.016);
  }
  CHECK(h.percentile_us(100) == 100'000);
  latency_histogram other;
  other.record(5'000'000);
  h.merge(other);
  CHECK(h.max_us() == 5'000'000);
  CHECK(h.percentile_us(100) == 5'000'000);
}

TEST_CASE("bench: the outcome table is bounded", "[bench]") {
  outcome_counts c;
  for (int i = 0; i < 100; ++i)
    c.add("kind-" + std::to_string(i));
  CHECK(c.all().size() == outcome_kinds_max + 1); // and "other"
  CHECK(c.get("other") == 100 - outcome_kinds_max);
}

TEST_CASE("bench: one response at a time, partial waits, broken refused",
          "[bench]") {
  std::string two = "HTTP/1.1 409 Conflict\r\nContent-Length: 17\r\n\r\n"
                    "{\"code\":\"sold\"}  "
                    "HTTP/1.1 201 Created\r\nConnection: close\r\n"
                    "Content-Length: 2\r\n\r\n{}";
  http_response r;
  size_t used = 0;
  REQUIRE(parse_response(two, r, used) == parse_result::complete);
  CHECK(r.status == 409);
  CHECK(json_member(r.body, "code") == "sold");
  CHECK_FALSE(r.close);
  http_response second;
  size_t used2 = 0;
  REQUIRE(parse_response(std::string_view{two}.substr(used), second, used2)
          == parse_result::complete);
  CHECK(second.status == 201);
  CHECK(second.close);
  CHECK(used + used2 == two.size());
  http_response partial;
  CHECK(parse_response(two.substr(0, 30), partial, used)
        == parse_result::incomplete);
  CHECK(parse_response("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", partial,
                       used)
        == parse_result::malformed);
  CHECK(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                       partial, used)
        == parse_result::malformed);
}
