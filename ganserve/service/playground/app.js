// The playground: the public REST API only, no framework. The view's state (model,
// version, seeds, psi, class, pinned seeds) lives in the URL's query, so a link
// reproduces it.

const $ = (id) => document.getElementById(id);
const GRID = 8;                       // images per grid
const SEED_MAX = 2 ** 31;

const state = { model: "", version: "", seeds: "", psi: 1, cls: "", pinned: [] };
let models = [];
let pending = null;                   // the AbortController of the request in flight

// ---------------------------------------------------------------- the API
async function api(path, body, signal) {
  const init = body === undefined ? { signal } : {
    method: "POST", signal, body: JSON.stringify(body),
    headers: { "content-type": "application/json" } };
  const r = await fetch(path, init);
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const msg = data?.error?.message ?? data?.detail ?? `${r.status} ${r.statusText}`;
    throw new Error(msg);
  }
  return data;
}

function showError(message) {
  const el = $("error");
  el.textContent = message || "";
  el.hidden = !message;
}

// ---------------------------------------------------------------- URL state
function readUrl() {
  const q = new URLSearchParams(location.search);
  state.model = q.get("model") ?? "";
  state.version = q.get("version") ?? "";
  state.seeds = q.get("seeds") ?? "";
  state.psi = q.has("psi") ? Number(q.get("psi")) : 1;
  state.cls = q.get("class") ?? "";
  state.pinned = (q.get("pinned") ?? "").split(",").filter(Boolean).map(Number);
}

function writeUrl() {
  const q = new URLSearchParams();
  for (const [k, v] of [["model", state.model], ["version", state.version],
                        ["seeds", state.seeds], ["psi", String(state.psi)],
                        ["class", state.cls], ["pinned", state.pinned.join(",")]]) {
    if (v) q.set(k, v);
  }
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

// ---------------------------------------------------------------- models
const current = () => models.find((m) => m.name === state.model);

function fillModels() {
  $("model").replaceChildren(...models.map((m) => new Option(`${m.name} (${m.family})`, m.name)));
  if (!current()) state.model = models[0]?.name ?? "";
  $("model").value = state.model;
  fillModel();
}

function fillModel() {
  const m = current();
  if (!m) return;
  const versions = m.versions.map((v) => v.version);
  $("version").replaceChildren(new Option(`default (${m.default})`, ""),
                               ...versions.map((v) => new Option(v, v)));
  if (state.version && !versions.includes(state.version)) state.version = "";
  $("version").value = state.version;
  const classes = m.conditional ? m.classes : [];
  $("class-label").hidden = !classes.length;
  $("class").replaceChildren(...classes.map((c) => new Option(c, c)));
  if (classes.length && !classes.includes(state.cls)) state.cls = classes[0];
  if (!classes.length) state.cls = "";
  $("class").value = state.cls;
  const fid = m.metrics?.fid;
  $("model-facts").textContent = [
    `${m.family}, ${m.resolution} px, ${m.channels === 1 ? "grey" : "colour"}`,
    m.classes.length ? `${m.classes.length} classes` : "",
    fid !== undefined ? `FID ${Number(fid).toFixed(2)}` : "",
    `versions ${versions.join(", ")}`].filter(Boolean).join(" · ");
}

// ---------------------------------------------------------------- sampling
function request() {
  const body = { seeds: state.seeds, truncation_psi: state.psi, format: "json" };
  if (state.version) body.version = state.version;
  if (state.cls) body.class = state.cls;
  const op = state.cls ? "conditional" : "sample";
  return { path: `/v1/models/${encodeURIComponent(state.model)}/${op}`, body };
}

function randomSeeds() {
  const seeds = new Uint32Array(GRID);
  crypto.getRandomValues(seeds);
  return Array.from(seeds, (s) => s % SEED_MAX).join(",");
}

async function render() {
  if (!state.model) return;
  if (!state.seeds) state.seeds = randomSeeds();
  $("seeds").value = state.seeds;
  writeUrl();
  pending?.abort();
  pending = new AbortController();
  const { path, body } = request();
  const grid = $("grid");
  grid.setAttribute("aria-busy", "true");
  try {
    const out = await api(path, body, pending.signal);
    showError("");
    grid.replaceChildren(...out.images.map(tile));
    $("download").href = `data:image/png;base64,${out.grid_png}`;
    grid.dataset.rendered = String(performance.now());
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  } finally {
    grid.setAttribute("aria-busy", "false");
  }
}

function tile(img) {
  const button = document.createElement("button");
  button.type = "button";
  const pinned = state.pinned.includes(img.seed);
  button.setAttribute("aria-pressed", String(pinned));
  button.title = `seed ${img.seed}: click to ${pinned ? "unpin" : "pin"}`;
  const label = img.class_name ? `${img.class_name}, seed ${img.seed}` : `seed ${img.seed}`;
  const figure = document.createElement("figure");
  figure.style.margin = "0";
  const image = new Image();
  image.src = `data:image/png;base64,${img.png}`;
  image.alt = `${state.model} sample, ${label}`;
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  figure.append(image, caption);
  button.append(figure);
  button.addEventListener("click", () => togglePin(img.seed, button));
  return button;
}

function togglePin(seed, button) {
  const at = state.pinned.indexOf(seed);
  if (at >= 0) state.pinned.splice(at, 1); else state.pinned.push(seed);
  button.setAttribute("aria-pressed", String(at < 0));
  $("pinned").textContent = state.pinned.length ? `pinned: ${state.pinned.join(", ")}` : "";
  writeUrl();
}

function curl() {
  const { path, body } = request();
  return `curl -s -X POST ${location.origin}${path} -H 'content-type: application/json' ` +
         `-d '${JSON.stringify({ ...body, format: undefined })}' -o grid.png`;
}

// ---------------------------------------------------------------- wiring
function wire() {
  $("model").addEventListener("change", () => {
    state.model = $("model").value; state.version = ""; fillModel(); render();
  });
  $("version").addEventListener("change", () => { state.version = $("version").value; render(); });
  $("class").addEventListener("change", () => { state.cls = $("class").value; render(); });
  $("seeds").addEventListener("change", () => { state.seeds = $("seeds").value.trim(); render(); });
  $("new-seeds").addEventListener("click", () => { state.seeds = randomSeeds(); render(); });
  $("psi").addEventListener("input", () => {
    state.psi = Number($("psi").value);
    $("psi-value").textContent = state.psi.toFixed(2);
    render();
  });
  $("sample-form").addEventListener("submit", (e) => e.preventDefault());
  $("copy-curl").addEventListener("click", async () => {
    const text = curl();
    $("curl").textContent = text;
    $("curl").hidden = false;
    await navigator.clipboard?.writeText(text).catch(() => {});
  });
}

async function start() {
  readUrl();
  wire();
  $("psi").value = String(state.psi);
  $("psi-value").textContent = state.psi.toFixed(2);
  $("pinned").textContent = state.pinned.length ? `pinned: ${state.pinned.join(", ")}` : "";
  try {
    models = (await api("/v1/models")).models;
  } catch (e) {
    showError(e.message);
    return;
  }
  if (!models.length) {
    showError("no models are served yet (see GET /v1/models)");
    return;
  }
  fillModels();
  await render();
}

start();
