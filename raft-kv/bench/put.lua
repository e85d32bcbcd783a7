-- wrk script: PUT /kv/k<N> with a value of VALUE_BYTES (default 128) bytes,
-- cycling over KEYS (default 1024) keys. Used by raft-kv/bench/http-put.
local value = string.rep("x", tonumber(os.getenv("VALUE_BYTES") or "128"))
local keys = tonumber(os.getenv("KEYS") or "1024")
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/kv/k" .. (counter % keys), nil, value)
end
