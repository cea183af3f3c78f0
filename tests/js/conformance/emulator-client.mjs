// Shared by the conformance scripts: an @fal-ai/client pointed at the local emulator.
// A requestMiddleware rewrites https://<fal host>/… to BASE/<fal host>/… so every
// host the client knows (fal.run, queue.fal.run, rest.fal.ai, …) reaches the emulator.
// URLs already on the emulator's address (CDN URLs it returned) are left alone.
import { createFalClient } from "@fal-ai/client";

export function rewriteUrl(base, url) {
  const match = /^https:\/\/([^/]+)(\/.*)?$/.exec(url);
  if (!match) return url;
  const [, host, rest = "/"] = match;
  if (host.startsWith("127.0.0.1") || host.startsWith("localhost")) return url;
  return `${base.replace(/\/+$/, "")}/${host}${rest}`;
}

export function emulatorClient(base, key, extra = {}) {
  return createFalClient({
    credentials: key,
    requestMiddleware: async (request) => ({ ...request, url: rewriteUrl(base, request.url) }),
    ...extra,
  });
}

// Prints a fal client error as JSON-friendly fields (name, status, body).
export function describeError(error) {
  const { name, message = String(error), status, body } = error ?? {};
  return { name: error?.constructor?.name ?? name, message, status, body };
}
