-- wrk: POST /services with a unique name per request (per thread prefix + counter), keeping the
-- headers given with -H (the bearer token).
local counter = 0
local headers = {}
setup = function(thread)
  thread:set("prefix", string.format("t%d-%d", math.random(1, 1e9), os.time()))
end
init = function()
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"name":"b-%s-%d","owner":"bench","tags":{"service":"bench","env":"load"},"links":{"repo":"https://git.example.com/b"}}',
    prefix, counter)
  return wrk.format("POST", "/services", headers, body)
end
