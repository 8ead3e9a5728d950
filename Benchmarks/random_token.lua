-- wrk script: each request opens the tracking path of a random simulation token from tokens.txt.
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local prefix = os.getenv("TRACK_PREFIX")
request = function()
  local token = tokens[math.random(#tokens)]
  return wrk.format("GET", prefix .. token, { ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Benchmark" })
end
