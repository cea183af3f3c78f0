// Drives @fal-ai/client through an NXS gateway at endpoints NXS's shorthand used to get
// wrong: an owner NXS does not list, a workflow, a deep path, a text stream, an app of
// the customer's own. Usage: node fidelity-client.mjs <gateway-url> <nxs-key> <mode>
import { nxsClient, report } from "./nxs-client.mjs";

const [gateway, key, mode] = process.argv.slice(2);

async function failure(call) {
  try {
    await call();
    return "no error";
  } catch (error) {
    return { status: error.status };
  }
}

async function main() {
  const fal = nxsClient(gateway, key, mode);
  const out = { mode };
  const video = await fal.subscribe("moonvalley/marey/t2v", { input: { prompt: "a river" } });
  out.video = video.data.video.content_type;
  const flow = await fal.run("workflows/fal-ai/image-pipeline/text-to-image", {
    input: { prompt: "a flow", image_size: { width: 64, height: 48 } },
  });
  const source = flow.data.images[0].url;
  out.workflow = [flow.data.images[0].width, flow.data.images[0].height];
  const edit = await fal.run("fal-ai/flux/dev/image-to-image", {
    input: { prompt: "an edit", image_url: source },
  });
  out.edit = [edit.data.images[0].width, edit.data.images[0].height];
  const stream = await fal.stream("fal-ai/any-llm", { input: { prompt: "hello" } });
  const events = [];
  for await (const event of stream) events.push(event);
  const done = await stream.done();
  out.llm = { partials: events.filter((e) => e.partial === true).length, output: done.output };
  out.ownApp = await failure(() => fal.run("myorg/my-app", { input: { prompt: "mine" } }));
  return out;
}

report(main);
