// fal.queue.submit with a webhookUrl through the NXS gateway; prints the request id.
// usage: node webhook-gateway.mjs GATEWAY KEY MODE ENDPOINT WEBHOOK_URL
import { nxsClient, report } from "./nxs-client.mjs";

const [gateway, key, mode, endpoint, webhookUrl] = process.argv.slice(2);

report(async () => {
  const fal = nxsClient(gateway, key, mode);
  const submitted = await fal.queue.submit(endpoint, { input: { prompt: "tell me when done" }, webhookUrl });
  return { request_id: submitted.request_id };
});
