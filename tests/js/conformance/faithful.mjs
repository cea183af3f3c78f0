// Scenarios where @fal-ai/client reads more than a body: the start timeout's 504 with
// x-fal-request-timeout-type (isUserTimeout), and a failed model's status and request id.
// Usage: node faithful.mjs <emulator base URL> <key> <scenario>; prints one JSON line.
import { emulatorClient, describeError } from "./emulator-client.mjs";

const [base, key, scenario] = process.argv.slice(2);
const fal = emulatorClient(base, key);
const FLUX = "fal-ai/flux/dev";
const ARGS = { prompt: "a quiet harbour", image_size: "square", seed: 5 };

async function startTimeout() {
  const blocker = await fal.queue.submit(FLUX, { input: ARGS });
  try {
    await fal.subscribe(FLUX, { input: ARGS, startTimeout: 1.5, pollInterval: 100 });
    return { blocker: blocker.request_id, error: null };
  } catch (error) {
    return {
      error: describeError(error),
      timeoutType: error.timeoutType ?? null,
      isUserTimeout: error.isUserTimeout ?? null,
      requestId: error.requestId ?? null,
    };
  }
}

async function failure() {
  try {
    await fal.run(FLUX, { input: { ...ARGS, prompt: "please [fail]" } });
    return { error: null };
  } catch (error) {
    return { error: describeError(error), requestId: error.requestId ?? null };
  }
}

const scenarios = { "start-timeout": startTimeout, failure };
console.log(JSON.stringify(await scenarios[scenario]()));
