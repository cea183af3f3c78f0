// Drives @fal-ai/client against a running NXS gateway and prints one JSON summary.
// Usage: node gateway-client.mjs <gateway-url> <nxs-key> <middleware|proxyUrl>
// "middleware" uses the exact requestMiddleware of seed 000 (→ /api/proxy with
// x-fal-target-url); "proxyUrl" uses proxyUrl {url: …/api/fal/proxy, when: "always"}.
import { nxsClient, report } from "./nxs-client.mjs";

const [gateway, key, mode] = process.argv.slice(2);

async function main() {
  const fal = nxsClient(gateway, key, mode);
  const out = { mode };
  const run = await fal.run("fal-ai/flux/dev", { input: { prompt: "A cyberpunk city at sunset" } });
  out.run = { images: run.data.images.length, requestId: run.requestId };

  const updates = [];
  const subscribed = await fal.subscribe("fal-ai/flux/dev", {
    input: { prompt: "A sunset over mountains" },
    logs: true,
    onQueueUpdate: (update) => updates.push(update.status),
  });
  out.subscribe = { images: subscribed.data.images.length, updates, requestId: subscribed.requestId };

  const stream = await fal.stream("fal-ai/flux/dev", { input: { prompt: "streamed" } });
  let events = 0;
  for await (const _event of stream) events += 1;
  const streamed = await stream.done();
  out.stream = { events, images: streamed.images ? streamed.images.length : 0 };

  const submitted = await fal.queue.submit("fal-ai/flux/dev", { input: { prompt: "queued" } });
  const requestId = submitted.request_id;
  let status = await fal.queue.status("fal-ai/flux/dev", { requestId, logs: true });
  while (status.status !== "COMPLETED") {
    await new Promise((resolve) => setTimeout(resolve, 100));
    status = await fal.queue.status("fal-ai/flux/dev", { requestId, logs: false });
  }
  const result = await fal.queue.result("fal-ai/flux/dev", { requestId });
  out.queue = { requestId, status: status.status, images: result.data.images.length };

  const toCancel = await fal.queue.submit("fal-ai/flux/dev", { input: { prompt: "cancel me" } });
  try {
    await fal.queue.cancel("fal-ai/flux/dev", { requestId: toCancel.request_id });
    out.cancel = "ok";
  } catch (error) {
    out.cancel = `status ${error.status}`;
  }

  const fileUrl = await fal.storage.upload(new Blob(["hello through nxs"], { type: "text/plain" }));
  out.upload = await (await fetch(fileUrl)).text();

  try {
    await fal.run("fal-ai/flux/dev", { input: {} });
    out.invalid = "no error";
  } catch (error) {
    out.invalid = { status: error.status, name: error.name };
  }
  return out;
}

report(main);
