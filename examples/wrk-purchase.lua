-- wrk script: every request is a purchase by a new user with a new
-- request_id, so each one is a real, durable order (no retries, no limits
-- hit) until the item sells out. Usage (item "wrk-item" must exist):
--   wrk -t2 -c64 -d10s -s examples/wrk-purchase.lua http://127.0.0.1:8080
-- Each wrk thread numbers its users from its own id, so ids never collide.
local counter = 0
local item = os.getenv("SECKILL_ITEM") or "wrk-item"

-- setup runs in the main Lua state, once per thread: number the threads,
-- and put the start time in the ids so a second run makes new users.
local threads = 0
-- SECKILL_RUN tells apart wrk processes started in the same second (one per
-- node of a cluster): without it they would send the same users.
local run = (os.getenv("SECKILL_RUN") or "") .. tostring(os.time())
function setup(thread)
  threads = threads + 1
  thread:set("prefix", "w" .. run .. "t" .. threads .. "u")
end

function request()
  counter = counter + 1
  local user = (prefix or "w") .. counter
  local body = '{"user_id":"' .. user .. '","quantity":1,"request_id":"r' .. user .. '"}'
  return wrk.format("POST", "/api/v1/items/" .. item .. "/purchase",
                    {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
