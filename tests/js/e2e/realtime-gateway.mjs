// fal.realtime.connect through the NXS gateway. The client asks for a token at
// rest.fal.ai/tokens/ (through the middleware or proxyUrl → NXS issues its own) and
// opens wss://fal.run/{app}/realtime?fal_jwt_token=…; WebSocket is a `ws` subclass that
// reroutes wss://fal.run/ to the gateway. Sends each prompt, prints results as JSON.
// usage: node realtime-gateway.mjs GATEWAY KEY MODE ENDPOINT PROMPT [PROMPT…]
// REALTIME_TOKEN set: a tokenProvider handing out that token instead.
import { WebSocket as NodeWebSocket } from "ws";
import { nxsClient } from "./nxs-client.mjs";

const [gateway, key, mode, endpoint, ...prompts] = process.argv.slice(2);
const wsBase = gateway.replace(/^http/, "ws");
const urls = [];

globalThis.WebSocket = class extends NodeWebSocket {
  constructor(url, ...rest) {
    const rerouted = String(url).replace(/^wss:\/\/fal\.run\//, `${wsBase}/`);
    urls.push(rerouted.replace(/fal_jwt_token=[^&]*/, "fal_jwt_token=…"));
    super(rerouted, ...rest);
  }
};

const fal = nxsClient(gateway, key, mode);
const results = [];
const errors = [];
const finish = (connection) => {
  connection.close();
  console.log(JSON.stringify({ results, errors, urls }));
  process.exit(0);
};

const token = process.env.REALTIME_TOKEN;
const connection = fal.realtime.connect(endpoint, {
  throttleInterval: 0,
  ...(token ? { tokenProvider: async () => token, tokenExpirationSeconds: 120 } : {}),
  onResult: (result) => {
    results.push({ images: result.images.length, bytes: result.images[0].content.length });
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
