// One fal.run through an NXS gateway whose upstream slots are all taken: NXS answers 429
// with Retry-After once its wait deadline passes, and @fal-ai/client retries until it has
// its image. Usage: node scheduler-retry.mjs <gateway-url> <nxs-key>
import { nxsClient, report } from "./nxs-client.mjs";

const [gateway, key] = process.argv.slice(2);

async function main() {
  const fal = nxsClient(gateway, key, "middleware");
  const result = await fal.run("fal-ai/flux/dev", {
    input: { prompt: "a patient fox", image_size: { width: 64, height: 48 } },
  });
  const image = result.data.images[0];
  return { width: image.width, height: image.height, content_type: image.content_type };
}

report(main);
