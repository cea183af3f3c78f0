// Shared by the streaming/realtime/storage/webhook scripts: an @fal-ai/client pointed at
// an NXS gateway, either with seed 000's requestMiddleware (→ /api/proxy with
// x-fal-target-url) or with proxyUrl {url: …/api/fal/proxy, when: "always"}.
import { createFalClient } from "@fal-ai/client";

export function nxsClient(gateway, key, mode) {
  if (mode === "middleware") {
    return createFalClient({
      credentials: key,
      requestMiddleware: async (req) => ({
        ...req,
        url: `${gateway}/api/proxy`,
        headers: { ...(req.headers || {}), "x-fal-target-url": req.url },
      }),
    });
  }
  return createFalClient({
    credentials: key,
    proxyUrl: { url: `${gateway}/api/fal/proxy`, when: "always" },
  });
}

// Print one JSON line (the pytest side reads the last line) and exit non-zero on error.
export function report(main) {
  main()
    .then((out) => console.log(JSON.stringify(out)))
    .catch((error) => {
      console.log(JSON.stringify({ error: String(error), status: error.status, body: error.body }));
      process.exit(1);
    });
}
