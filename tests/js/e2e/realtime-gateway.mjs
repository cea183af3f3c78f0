// fal.realtime.connect through the NXS gateway. The client asks for a token at
// rest.fal.ai/tokens/ (through the middleware or proxyUrl → NXS issues its own) and
// opens wss://fal.run/{app}/realtime?fal_jwt_token=…; WebSocket is a `ws` subclass that
// reroutes wss://fal.run/ to the gateway. Sends each prompt, prints results as JSON.
// usage: node realtime-gateway.mjs GATEWAY KEY MODE ENDPOINT PROMPT [PROMPT…]
// REALTIME_TOKEN set: a tokenProvider handing out that token instead.
import { realtimeSession, rerouteFalRun } from "../realtime-session.mjs";
import { nxsClient } from "./nxs-client.mjs";

const [gateway, key, mode, endpoint, ...prompts] = process.argv.slice(2);
const urls = [];
rerouteFalRun(gateway.replace(/^http/, "ws"), (url) =>
  urls.push(url.replace(/fal_jwt_token=[^&]*/, "fal_jwt_token=…")),
);

const summarise = (result) => ({
  images: result.images.length,
  bytes: result.images[0].content.length,
});

realtimeSession(nxsClient(gateway, key, mode), endpoint, prompts, summarise, () => ({ urls }));
