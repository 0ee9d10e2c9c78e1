// The page's state. What a link must reproduce (model, version, mode, seeds, psi, class,
// pins, the interpolation, the style mix, the edit sliders, the followed job) lives in the
// URL's query; what cannot (a projected image's latent) lives in memory only.

export const MODES = ["sample", "interpolate", "mix", "image", "quality", "jobs"];
export const PSI_MAX = 1.5;          // the slider's end (the API takes up to 2)
export const FRAMES_MAX = 64;        // GANSERVE_MAX_INTERPOLATION_STEPS' default

// URL key -> [state key, kind]; "" and defaults are left out of the URL
const FIELDS = {
  model: ["model", "text"], version: ["version", "text"], mode: ["mode", "text"],
  seeds: ["seeds", "text"], psi: ["psi", "number"], class: ["cls", "text"],
  pinned: ["pinned", "seeds"], from: ["from", "text"], to: ["to", "text"],
  fclass: ["fromCls", "text"], tclass: ["toCls", "text"],
  space: ["space", "text"], method: ["method", "text"], frames: ["frames", "number"],
  t: ["t", "number"], rows: ["rows", "text"], cols: ["cols", "text"],
  styles: ["styles", "text"], eseed: ["eseed", "text"], dirs: ["dirs", "dirs"],
  job: ["job", "text"],
};
const DEFAULTS = { model: "", version: "", mode: "sample", seeds: "", psi: 1, cls: "",
                   pinned: [], from: "", to: "", fromCls: "", toCls: "", space: "z", method: "slerp", frames: 16,
                   t: 0, rows: "", cols: "", styles: "middle", eseed: "", dirs: {},
                   job: "" };

export const state = structuredClone(DEFAULTS);
/** In memory only: the projected image ({model, version, latentName, latent, cls}) and
 *  the one before; each belongs to the model and version it was projected into. */
export const memory = { projected: null, previous: null };
const mine = (p) => (p && p.model === state.model && p.version === state.version ? p : null);
export const projected = () => mine(memory.projected);
export const previousImage = () => mine(memory.previous);
export let models = [];
export const setModels = (list) => { models = list; };
export const current = () => models.find((m) => m.name === state.model);

// "pc0:1.5;Sneaker->Sandal:1" <-> {pc0: 1.5, "Sneaker->Sandal": 1}
const dirsText = (d) => Object.entries(d).filter(([, v]) => v).map(([k, v]) => `${k}:${v}`)
  .join(";");
function dirsParse(text) {
  const out = {};
  for (const part of text.split(";")) {
    const at = part.lastIndexOf(":");
    const v = Number(part.slice(at + 1));
    if (at > 0 && Number.isFinite(v)) out[part.slice(0, at)] = v;
  }
  return out;
}

export function readUrl() {
  const q = new URLSearchParams(location.search);
  Object.assign(state, structuredClone(DEFAULTS));
  for (const [key, [field, kind]] of Object.entries(FIELDS)) {
    if (!q.has(key)) continue;
    const v = q.get(key);
    if (kind === "number") { if (Number.isFinite(Number(v)) && v !== "") state[field] = Number(v); }
    else if (kind === "seeds") state[field] = v.split(",").filter(Boolean).map(Number);
    else if (kind === "dirs") state[field] = dirsParse(v);
    else state[field] = v;
  }
  if (!MODES.includes(state.mode)) state.mode = "sample";
  clean();
}

const wholeNumber = (v) => Number.isInteger(v) && v >= 0;

/** A hand-edited link cannot put the page in a state its controls cannot show. */
function clean() {
  state.psi = Math.min(PSI_MAX, Math.max(0, state.psi));
  state.frames = Math.min(FRAMES_MAX, Math.max(2, Math.round(state.frames)));
  state.t = wholeNumber(state.t) ? state.t : 0;
  state.pinned = state.pinned.filter(wholeNumber);
  for (const [name, v] of Object.entries(state.dirs)) {       // the sliders' widest range
    state.dirs[name] = Math.min(3, Math.max(-3, v));
  }
}

export function writeUrl() {
  const q = new URLSearchParams();
  for (const [key, [field, kind]] of Object.entries(FIELDS)) {
    const v = state[field];
    const text = kind === "seeds" ? v.join(",") : kind === "dirs" ? dirsText(v) : String(v);
    const dflt = DEFAULTS[field];
    const dtext = kind === "seeds" ? dflt.join(",") : kind === "dirs" ? "" : String(dflt);
    if (text && text !== dtext) q.set(key, text);
  }
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

/** The version part of a request body (none: the default version). */
export const versioned = (body) => (state.version ? { ...body, version: state.version } : body);
export const modelPath = (op) => `/v1/models/${encodeURIComponent(state.model)}/${op}`;
export const can = (capability) => current()?.capabilities?.includes(capability) ?? false;

/** A section's error line (role=alert): the API's message, or hidden. */
export function showError(el, message) {
  el.textContent = message || "";
  el.hidden = !message;
}

/** Marks ``el`` busy while ``work`` runs; stamps data-rendered when it succeeds, so a
 *  test (or a screen reader, via aria-busy) knows when new pixels are in. Aborted work
 *  (a newer request replaced it) is silent; other failures go to ``errorEl``. */
export async function busy(el, errorEl, work) {
  const token = Symbol("work");
  el.busyToken = token;
  el.setAttribute("aria-busy", "true");
  try {
    await work();
    showError(errorEl, "");
    el.dataset.rendered = String(performance.now());
    el.classList.remove("stale");
  } catch (e) {
    if (e.name === "AbortError") return;
    showError(errorEl, e.message);
    el.classList.add("stale");          // what is shown no longer matches the controls
  } finally {
    if (el.busyToken === token) el.setAttribute("aria-busy", "false");
  }
}

/** One request in flight per purpose: starting a new one aborts the previous. */
export function latest() {
  let controller = null;
  return () => {
    controller?.abort();
    controller = new AbortController();
    return controller.signal;
  };
}

export const $ = (id) => document.getElementById(id);

/** Shows ``url`` (a blob: or data: URL) in ``img``, releasing a blob: one it showed. */
export function showBlob(img, url) {
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = url;
}

/** A drop zone (a label around a file input): ``onFile(file)`` for a dropped or chosen
 *  file; a dropped file's name is shown in the zone's ``.drop-name`` (the input shows a
 *  chosen one's). */
export function dropZone(zone, input, onFile) {
  const name = zone.querySelector(".drop-name");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer.files[0];
    name.textContent = file?.name ?? "";
    if (file) onFile(file);
  });
  input.addEventListener("change", () => {
    name.textContent = "";
    if (input.files[0]) onFile(input.files[0]);
  });
}
