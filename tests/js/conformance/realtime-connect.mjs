// fal.realtime.connect against the emulator: sends each prompt as a msgpack frame and
// prints the results it gets back (image bytes summarised) as JSON.
// usage: node realtime-connect.mjs BASE_URL KEY ENDPOINT PROMPT [PROMPT…]
// REALTIME_TOKEN set: a tokenProvider handing out that token (to try a bad one).
// The client builds wss://fal.run/… itself (no middleware), so WebSocket is a `ws`
// subclass that reroutes it to the emulator's /fal.run/ prefix.
import { realtimeSession, rerouteFalRun } from "../realtime-session.mjs";
import { emulatorClient } from "./emulator-client.mjs";

const [base, key, endpoint, ...prompts] = process.argv.slice(2);
rerouteFalRun(`${base.replace(/^http/, "ws")}/fal.run`);

const summarise = (result) => ({
  ...result,
  images: result.images.map(({ content, ...image }) => ({
    ...image,
    bytes: content.length,
    magic: Buffer.from(content.slice(0, 4)).toString("hex"),
  })),
});

realtimeSession(emulatorClient(base, key), endpoint, prompts, summarise);
