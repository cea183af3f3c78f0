// fal's official @fal-ai/server-proxy (Express adapter), run exactly as its README shows,
// with global fetch rewritten so https://<host>/… reaches the local upstream.
// Usage: node bench/fal_proxy.mjs PORT UPSTREAM_BASE   (UPSTREAM_BASE e.g. http://127.0.0.1:8081)
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "tests", "js", "package.json"));
const express = require("express");
const falProxy = require("@fal-ai/server-proxy/express");

const [port, upstream] = process.argv.slice(2);
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = typeof input === "string" ? input : input.url;
  const local = url.replace(/^https:\/\/([^/]+)\//, `${upstream}/$1/`);
  return realFetch(local, init);
};
process.env.FAL_KEY = process.env.FAL_KEY || "upstream-secret-key";

const app = express();
app.use(express.json());
app.all(falProxy.route, falProxy.handler);
app.get("/healthz", (_req, res) => res.json({ ok: true }));
app.listen(Number(port), "127.0.0.1");
