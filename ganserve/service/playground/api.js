// The public REST API, as the playground calls it: JSON in and out, the API's own error
// message on failure, the API key (if one is entered) as a Bearer token. The key lives in
// this tab's sessionStorage only: never in the URL, never in localStorage.

const KEY = "ganserve-api-key";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY) ?? "",
  set: (value) => (value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY)),
};

function headers(json) {
  const h = {};
  if (json) h["content-type"] = "application/json";
  const key = apiKey.get();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function check(r) {
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const err = data?.error;
    throw new ApiError(err?.message ?? data?.detail ?? `${r.status} ${r.statusText}`,
                       r.status, err?.code);
  }
  return data;
}

/** GET ``path``, or POST ``body`` as JSON (``method`` overrides), answering the parsed JSON. */
export async function api(path, { body, method, signal } = {}) {
  const init = { signal, method: method ?? (body === undefined ? "GET" : "POST"),
                 headers: headers(body !== undefined) };
  if (body !== undefined) init.body = JSON.stringify(body);
  return check(await fetch(path, init));
}

/** POST ``form`` (a FormData: a file upload) as multipart. */
export async function upload(path, form, signal) {
  return check(await fetch(path, { method: "POST", body: form, signal, headers: headers(false) }));
}

/** POST ``body`` and answer the response's bytes as a Blob (an animation to download). */
export async function blob(path, body, signal) {
  const r = await fetch(path, { method: "POST", body: JSON.stringify(body), signal,
                                headers: headers(true) });
  if (!r.ok) await check(r);
  return r.blob();
}

/** An image the API serves by GET (a job's progress grid) as an object URL, or null
 *  while there is none yet (404). */
export async function imageUrl(path, signal) {
  const r = await fetch(path, { signal, headers: headers(false), cache: "no-store" });
  if (r.status === 404) return null;
  if (!r.ok) await check(r);
  return URL.createObjectURL(await r.blob());
}

/** One Server-Sent Events block -> [event, data] (data: the joined data lines). */
function sseBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return [event, data.join("\n")];
}

/** A job's Server-Sent Events stream read with fetch (EventSource cannot send the API
 *  key): calls ``on(event, data)`` for each event until ``end``; a stream that closes
 *  before its ``end`` (a restart, a proxy's timeout) is an error, not a silent stop. */
export async function events(path, on, signal) {
  const r = await fetch(path, { signal, headers: { ...headers(false), accept: "text/event-stream" } });
  if (!r.ok) await check(r);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the job's event stream closed before the job ended: reload the page to follow it again");
    // normalised on the whole buffer: a chunk may end between a CR and its LF
    buffer = (buffer + value).replaceAll("\r\n", "\n");
    let at;
    while ((at = buffer.indexOf("\n\n")) >= 0) {
      const [event, data] = sseBlock(buffer.slice(0, at));
      buffer = buffer.slice(at + 2);
      if (!data) continue;                    // a keep-alive comment
      let parsed;
      try { parsed = JSON.parse(data); } catch { continue; }    // not ours: skip it
      on(event, parsed);
      if (event === "end" || event === "error") return;
    }
  }
}

export const png = (b64) => `data:image/png;base64,${b64}`;

/** ``image`` elements' data: a File -> its base64 (no data: prefix). */
export function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
