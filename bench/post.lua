-- wrk script: a 1 KB-class JSON POST with a customer key, as a fal client sends it.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Key " .. (os.getenv("BENCH_KEY") or "client-key")
local target = os.getenv("BENCH_TARGET")
if target and target ~= "" then
  wrk.headers["x-fal-target-url"] = target
end
wrk.body = '{"prompt": "' .. string.rep("a cyberpunk city at sunset, ", 16) .. '", "num_images": 1, "image_size": "landscape_4_3", "seed": 42}'
