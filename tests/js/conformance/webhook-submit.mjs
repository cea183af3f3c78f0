// fal.queue.submit with a webhookUrl against the emulator; prints the request id.
// usage: node webhook-submit.mjs BASE_URL KEY ENDPOINT WEBHOOK_URL PROMPT
import { describeError, emulatorClient } from "./emulator-client.mjs";

const [base, key, endpoint, webhookUrl, prompt] = process.argv.slice(2);
const fal = emulatorClient(base, key);
try {
  const { request_id } = await fal.queue.submit(endpoint, { input: { prompt }, webhookUrl });
  console.log(JSON.stringify({ request_id }));
} catch (error) {
  console.log(JSON.stringify({ error: describeError(error) }));
}
