-- wrk script for bench/bench_control.py: every request submits a 4-GPU training job with one of the
-- tenant tokens in TOKENFAB_BENCH_TOKENS (comma-separated, taken in turn; a tenant token submits for
-- its own tenant), with a unique name per thread and request. The answers are counted by status and
-- `done` prints one line "WRK_JSON {...}" with the counts and the latency percentiles.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  ok, bad, counter = 0, 0, 0
  tokens = {}
  for token in string.gmatch(os.getenv("TOKENFAB_BENCH_TOKENS") or "", "[^,]+") do
    table.insert(tokens, "Bearer " .. token)
  end
  path = "/api/v1/workloads"
end

function request()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json",
                   ["Authorization"] = tokens[(counter + id) % #tokens + 1]}
  local body = string.format('{"name":"t%d-%d","gpus":4}', id, counter)
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status == 201 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local acked, failed = 0, 0
  for _, thread in ipairs(threads) do
    acked = acked + thread:get("ok")
    failed = failed + thread:get("bad")
  end
  io.write(string.format(
    'WRK_JSON {"acknowledged": %d, "failed": %d, "requests": %d, "duration_s": %.6f, ' ..
    '"socket_errors": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    acked, failed, summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3))
end
