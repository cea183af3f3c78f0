// fal.stream through the gateway; records when each event arrived next to the time the
// emulator says it sent it (`sent_at`, Unix seconds), to show events are not buffered.
// Usage: node stream-timing.mjs <gateway-url> <nxs-key> <middleware|proxyUrl>
import { nxsClient, report } from "./nxs-client.mjs";

const [gateway, key, mode] = process.argv.slice(2);

report(async () => {
  const fal = nxsClient(gateway, key, mode);
  const stream = await fal.stream("fal-ai/flux/dev", { input: { prompt: "a slow sunrise" } });
  const events = [];
  for await (const event of stream) {
    events.push({ arrived: Date.now() / 1000, sent: event.sent_at ?? null, partial: !!event.partial });
  }
  const done = await stream.done();
  return { mode, events, images: done.images ? done.images.length : 0 };
});
