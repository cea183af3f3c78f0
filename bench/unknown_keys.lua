-- wrk script: post.lua's request with a fresh random well-formed `nxs_` key each time
-- (the shape `nxs keys create` makes, so the gateway may look it up); BENCH_SEED varies it.
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local body = '{"prompt": "' .. string.rep("a cyberpunk city at sunset, ", 16) .. '", "num_images": 1, "image_size": "landscape_4_3", "seed": 42}'
math.randomseed(tonumber(os.getenv("BENCH_SEED") or "1") + os.time())

request = function()
  local chars = {}
  for i = 1, 40 do
    local n = math.random(1, 64)
    chars[i] = alphabet:sub(n, n)
  end
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Key nxs_" .. table.concat(chars)}
  return wrk.format("POST", nil, headers, body)
end
