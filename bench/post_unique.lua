-- wrk: POST /services with a unique name per request (per thread prefix + counter).
local counter = 0

setup = function(thread)
  thread:set("prefix", string.format("t%d-%d", math.random(1, 1e9), os.time()))
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"name":"b-%s-%d","owner":"bench","tags":{"service":"bench","env":"load"},"links":{"repo":"https://git.example.com/b"}}',
    prefix, counter)
  return wrk.format("POST", "/services", {["Content-Type"] = "application/json"}, body)
end
