-- wrk script for scripts/bench-serving.sh: POSTs the Open Inference Protocol request in $BENCH_BODY and
-- prints one machine-readable line: RESULT requests seconds p50_ms p99_ms non_200 socket_errors.
-- wrk's own status count only covers codes above 399, so every answer other than 200 is counted here.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

-- Each wrk thread runs this file in its own Lua state: the counter below is per thread, and setup() (run in
-- the main state) keeps the threads so that done() can add their counters up.
non_200 = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status ~= 200 then
    non_200 = non_200 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non_200")
  end
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %.3f %.3f %d %d\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, bad,
    e.connect + e.read + e.write + e.timeout))
end
