// The core of fal's protocol driven by @fal-ai/client against the emulator: one
// scenario per run, its observations printed as one JSON line for pytest to assert on.
// usage: node core.mjs BASE_URL KEY SCENARIO   (run | subscribe | queue | cancel | workflow | stream | invalid)
import { emulatorClient, describeError } from "./emulator-client.mjs";

const [base, key, scenario] = process.argv.slice(2);
const fal = emulatorClient(base, key);
const FLUX = "fal-ai/flux/dev";
const SCHNELL = "fal-ai/flux/schnell";
const input = { prompt: "a lighthouse at dusk", image_size: "square", seed: 42 };

async function fetchImage(url) {
  const response = await fetch(url);
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, type: response.headers.get("content-type"),
    size: bytes.length, magic: Buffer.from(bytes.slice(0, 4)).toString("hex") };
}

const scenarios = {
  async run() {
    const result = await fal.run(SCHNELL, { input: { ...input, output_format: "png" } });
    return { ...result, image: await fetchImage(result.data.images[0].url) };
  },
  async subscribe() {
    const updates = [];
    const result = await fal.subscribe(FLUX, {
      input: { ...input, num_images: 2 }, logs: true, pollInterval: 100,
      onQueueUpdate: (update) => updates.push({ status: update.status,
        logs: (update.logs ?? []).map((log) => log.message), position: update.queue_position }),
    });
    const streamed = [];
    await fal.subscribe(FLUX, {
      input: { ...input, num_images: 2 }, logs: true, mode: "streaming",
      onQueueUpdate: (update) => streamed.push({ status: update.status,
        logs: (update.logs ?? []).map((log) => log.message) }),
    });
    return { ...result, updates, streamed };
  },
  async queue() {
    const submitted = await fal.queue.submit(FLUX, { input });
    const first = await fal.queue.status(FLUX, { requestId: submitted.request_id, logs: true });
    let status = first;
    while (status.status !== "COMPLETED") {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await fal.queue.status(FLUX, { requestId: submitted.request_id, logs: true });
    }
    const result = await fal.queue.result(FLUX, { requestId: submitted.request_id });
    let again;
    try { await fal.queue.cancel(FLUX, { requestId: submitted.request_id }); }
    catch (error) { again = describeError(error); }
    return { submitted, first, completed: status, result, cancelAfterDone: again };
  },
  async cancel() {
    const submitted = await fal.queue.submit(FLUX, { input });
    await fal.queue.cancel(FLUX, { requestId: submitted.request_id });
    const stream = await fal.queue.streamStatus(FLUX, { requestId: submitted.request_id, logs: true });
    const final = await stream.done();
    let result;
    try { result = await fal.queue.result(FLUX, { requestId: submitted.request_id }); }
    catch (error) { result = describeError(error); }
    return { final, result };
  },
  async workflow() {
    const id = "workflows/fal-ai/image-pipeline/text-to-image";
    const statuses = [];
    const result = await fal.subscribe(id, {
      input, pollInterval: 100, onQueueUpdate: (update) => statuses.push(update.status),
    });
    const status = await fal.queue.status(id, { requestId: result.requestId });
    return { ...result, statuses, status };
  },
  async stream() {
    const stream = await fal.stream(SCHNELL, { input });
    const events = [];
    for await (const event of stream) events.push(event);
    const done = await stream.done();
    return { events, done, requestId: stream.requestId };
  },
  async invalid() {
    const outcomes = {};
    for (const [name, call] of Object.entries({
      run: () => fal.run(FLUX, { input: { num_images: 9 } }),
      subscribe: () => fal.subscribe(FLUX, { input: { image_size: "huge" }, pollInterval: 100 }),
    })) {
      try { outcomes[name] = { data: (await call()).data }; }
      catch (error) { outcomes[name] = { ...describeError(error), fieldErrors: error.fieldErrors }; }
    }
    return outcomes;
  },
};

try {
  console.log(JSON.stringify(await scenarios[scenario]()));
} catch (error) {
  console.log(JSON.stringify({ error: describeError(error) }));
}
