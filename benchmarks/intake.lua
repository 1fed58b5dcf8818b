-- wrk script for benchmarks/intake.py: every request signs with a signer of its own.
-- Arguments (after --): the request path, and a run id that keeps addresses unique
-- across runs. done() prints one JSON line: rate, latency percentiles, status counts.
local threads = {}
local counter = 0
local path, run = "/", "0"
codes = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or path
  run = args[2] or run
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local who = run .. "-" .. id .. "-" .. counter
  local body = '{"name":"Signer ' .. who .. '","email":"s' .. who ..
    '@example.net","country":"KZ","city":"Almaty","organisation":"Bench union"}'
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("codes")
    for status, n in pairs(counts) do
      total[tostring(status)] = (total[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, '"' .. status .. '":' .. n)
  end
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"codes":{%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    table.concat(parts, ",")))
end
