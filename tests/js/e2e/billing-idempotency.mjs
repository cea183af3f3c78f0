// Submits through an NXS gateway with @fal-ai/client, retrying with the same
// Idempotency-Key (as after a lost answer), then reusing the key for another input.
// Usage: node billing-idempotency.mjs <gateway-url> <nxs-key> <endpoint> <idempotency-key>
import { createFalClient } from "@fal-ai/client";

const [gateway, key, endpoint, idempotencyKey] = process.argv.slice(2);

const fal = createFalClient({
  credentials: key,
  requestMiddleware: async (req) => ({
    ...req,
    url: `${gateway}/api/proxy`,
    headers: { ...(req.headers || {}), "x-fal-target-url": req.url },
  }),
});

async function submit(prompt) {
  try {
    const answer = await fal.queue.submit(endpoint, {
      input: { prompt },
      headers: { "Idempotency-Key": idempotencyKey },
    });
    return { requestId: answer.request_id };
  } catch (error) {
    return { status: error.status, body: error.body };
  }
}

const first = await submit("a lighthouse at dawn");
const retry = await submit("a lighthouse at dawn");
const reused = await submit("something else entirely");
await fal.queue.subscribeToStatus(endpoint, {
  requestId: first.requestId,
  mode: "polling",
  pollInterval: 100,
});
const done = await fal.queue.result(endpoint, { requestId: first.requestId });
console.log(JSON.stringify({ first, retry, reused, images: done.data.images.length }));
