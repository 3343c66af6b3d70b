-- wrk: GET /services/{id} over the ids listed in $BENCH_IDS (one per line).
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/services/" .. ids[math.random(#ids)])
end
