// Uploads `size` bytes with fal.storage.upload (the initiate flow; multipart above
// 90 MB) against the emulator, fetches the returned URL back and prints JSON.
// usage: node storage-upload.mjs BASE_URL KEY SIZE [FILE_NAME] [CONTENT_TYPE]
import { createHash } from "node:crypto";
import { emulatorClient } from "./emulator-client.mjs";

const [base, key, sizeArg, name = "upload.bin", type = "application/octet-stream"] =
  process.argv.slice(2);
const size = Number(sizeArg);
const bytes = new Uint8Array(size);
for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 12)) & 0xff;
const digest = (data) => createHash("sha256").update(data).digest("hex");

const fal = emulatorClient(base, key);
try {
  const url = await fal.storage.upload(new File([bytes], name, { type }));
  const response = await fetch(url);
  const body = new Uint8Array(await response.arrayBuffer());
  console.log(
    JSON.stringify({
      url,
      status: response.status,
      content_type: response.headers.get("content-type"),
      sent_sha256: digest(bytes),
      got_sha256: digest(body),
      got_size: body.length,
    }),
  );
} catch (error) {
  const { message = String(error), status, body } = error ?? {};
  console.log(JSON.stringify({ error: message, status, detail: body?.detail }));
}
