// fal.storage.upload through the NXS gateway (initiate, or initiate-multipart above
// 90 MB, as proxied REST calls); fetches the file URL back and prints digests as JSON.
// usage: node storage-gateway.mjs GATEWAY KEY MODE SIZE
import { createHash } from "node:crypto";
import { nxsClient, report } from "./nxs-client.mjs";

const [gateway, key, mode, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg);
const digest = (data) => createHash("sha256").update(data).digest("hex");

report(async () => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 12)) & 0xff;
  const fal = nxsClient(gateway, key, mode);
  const url = await fal.storage.upload(new File([bytes], "upload.bin", { type: "application/octet-stream" }));
  const response = await fetch(url);
  const body = new Uint8Array(await response.arrayBuffer());
  return { url, status: response.status, sent: digest(bytes), got: digest(body), size: body.length };
});
