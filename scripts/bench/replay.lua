-- wrk script: replay pre-signed requests from a file; each wrk thread takes every n-th line.
-- Line format (tab-separated): path, key id, webhook-id, webhook-timestamp, webhook-signature, body
-- Usage: wrk -t2 -c50 -d8s -s replay.lua http://127.0.0.1:PORT -- FILE THREADS
-- replay_once.lua (this script plus a response hook) sends every line once, then stops.
local threads_started = 0
reqs = {}
once = false

function setup(thread)
  thread:set("tid", threads_started)
  threads_started = threads_started + 1
end

local idx = 0
local filler = nil

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == tid then
      local p, kid, mid, ts, sig, body =
        line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", p, {
        ["Content-Type"] = "application/json",
        ["X-Codex-Key-Id"] = kid,
        ["webhook-id"] = mid,
        ["webhook-timestamp"] = ts,
        ["webhook-signature"] = sig,
      }, body)
    end
    n = n + 1
  end
  filler = wrk.format("GET", "/healthz")
end

function request()
  if once and idx >= #reqs then
    return filler
  end
  idx = idx % #reqs + 1
  return reqs[idx]
end


function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
