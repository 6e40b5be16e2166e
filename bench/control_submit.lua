-- wrk script for bench/bench_control.py: every request submits a 4-GPU training job for one of three
-- tenants (a unique name per thread and request) and counts the answers by status.
-- Environment: TOKENFAB_BENCH_TOKEN (operator bearer token).
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  bad = 0
  tenants = {"acme", "globex", "initech"}
  token = os.getenv("TOKENFAB_BENCH_TOKEN")
  wrk.method = "POST"
  wrk.path = "/api/v1/workloads"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  counter = counter + 1
  local body = string.format('{"name":"t%d-%d","gpus":4,"tenant":"%s"}', id, counter,
                             tenants[counter % 3 + 1])
  return wrk.format(nil, nil, nil, body)
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
