// What conformance/realtime-connect.mjs (against the emulator) and e2e/realtime-gateway.mjs
// (through NXS) share: rerouting the client's wss://fal.run/ to a local server, and one
// fal.realtime.connect session that sends each prompt once the previous one is answered.
import { WebSocket as NodeWebSocket } from "ws";

// `new WebSocket("wss://fal.run/…")` dials `${wsBase}/…` instead; `seen` gets each URL.
export function rerouteFalRun(wsBase, seen = () => {}) {
  globalThis.WebSocket = class extends NodeWebSocket {
    constructor(url, ...rest) {
      const rerouted = String(url).replace(/^wss:\/\/fal\.run\//, `${wsBase}/`);
      seen(rerouted);
      super(rerouted, ...rest);
    }
  };
}

// Sends the prompts as msgpack frames, then prints {results, errors, ...extra()} as one
// JSON line and exits. REALTIME_TOKEN set: a tokenProvider handing out that token.
export function realtimeSession(fal, endpoint, prompts, summarise, extra = () => ({})) {
  const results = [];
  const errors = [];
  const finish = (connection) => {
    connection.close();
    console.log(JSON.stringify({ results, errors, ...extra() }));
    process.exit(0);
  };
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
}
