// fal.realtime.connect against the emulator: sends each prompt as a msgpack frame and
// prints the results it gets back (image bytes summarised) as JSON.
// usage: node realtime-connect.mjs BASE_URL KEY ENDPOINT PROMPT [PROMPT…]
// REALTIME_TOKEN set: a tokenProvider handing out that token (to try a bad one).
// The client builds wss://fal.run/… itself (no middleware), so WebSocket is a `ws`
// subclass that reroutes it to the emulator's /fal.run/ prefix.
import { WebSocket as NodeWebSocket } from "ws";
import { emulatorClient } from "./emulator-client.mjs";

const [base, key, endpoint, ...prompts] = process.argv.slice(2);
const wsBase = base.replace(/^http/, "ws");

globalThis.WebSocket = class extends NodeWebSocket {
  constructor(url, ...rest) {
    super(String(url).replace(/^wss:\/\/fal\.run\//, `${wsBase}/fal.run/`), ...rest);
  }
};

const fal = emulatorClient(base, key);
const results = [];
const errors = [];
const finish = (connection) => {
  connection.close();
  console.log(JSON.stringify({ results, errors }));
  process.exit(0);
};
const summarise = (result) => ({
  ...result,
  images: result.images.map(({ content, ...image }) => ({
    ...image,
    bytes: content.length,
    magic: Buffer.from(content.slice(0, 4)).toString("hex"),
  })),
});

const token = process.env.REALTIME_TOKEN;
const connection = fal.realtime.connect(endpoint, {
  throttleInterval: 0,
  ...(token ? { tokenProvider: async () => token, tokenExpirationSeconds: 120 } : {}),
  onResult: (result) => {
    results.push(summarise(result));
    if (results.length === prompts.length) finish(connection);
    else connection.send({ prompt: prompts[results.length], seed: 7 });
  },
  onError: (error) => {
    errors.push({ message: error.message, status: error.status });
    finish(connection);
  },
});
connection.send({ prompt: prompts[0], seed: 7 });
setTimeout(() => finish(connection), Number(process.env.REALTIME_TIMEOUT_MS ?? 20000));
