// Interpolate: two endpoints (seeds, pinned images, or your projected image); every frame
// is fetched in one request, so the scrub slider only swaps pictures; play; download the
// same path as a GIF or WebP from the API.

import { api, blob, png } from "./api.js";
import { $, busy, current, latest, modelPath, previousImage, projected, showError,
         state, versioned, writeUrl } from "./state.js";

export const IMAGE = "image";              // the endpoint that is your projected image
const PREVIOUS = "previous";               // ... and the one projected before it
const next = latest();
let frames = [];
let timer = null;

function endpoint(text, cls) {
  const word = text.trim().toLowerCase();
  if (word === IMAGE || word === PREVIOUS) {
    const p = word === IMAGE ? projected() : previousImage();
    if (!p) throw new Error(`no ${word === IMAGE ? "projected" : "previous"} image yet: drop ` +
                            "one in “Your image” first");
    return { [p.latentName]: p.latent, ...(p.cls ? { class: p.cls } : {}) };
  }
  const seed = Number(text);
  if (!text.trim() || !Number.isInteger(seed) || seed < 0) {
    throw new Error(`“${text}” is not a seed (a whole number ≥ 0), “image” or “previous”`);
  }
  return { seed, ...(cls ? { class: cls } : {}) };
}

/** A conditional model's classes at the two ends (the start defaults to Sample's class). */
function classes() {
  const m = current();
  if (!m?.conditional) return [null, null];
  const known = (c) => m.classes.includes(c);
  const from = known(state.fromCls) ? state.fromCls : known(state.cls) ? state.cls : m.classes[0];
  return [from, known(state.toCls) ? state.toCls : from];
}

function request(format) {
  const [fromCls, toCls] = classes();
  return versioned({ start: endpoint(state.from, fromCls), end: endpoint(state.to, toCls),
                     steps: state.frames, space: state.space, method: state.method,
                     truncation_psi: state.psi, format });
}

/** Defaults for the endpoints: the first two pinned seeds, else 1 and 2. */
function defaults() {
  if (!state.from) state.from = String(state.pinned[0] ?? 1);
  if (!state.to) state.to = String(state.pinned[1] ?? 2);
  const m = current();
  const spaces = m?.w_dim ? ["z", "w"] : ["z"];
  if (!spaces.includes(state.space)) state.space = "z";
  const images = { [IMAGE]: projected(), [PREVIOUS]: previousImage() };
  if ([state.from, state.to].some((t) => images[t.trim().toLowerCase()]?.latentName === "w")) {
    state.space = "w";                       // a projected w has no z
  }
  $("space").replaceChildren(...spaces.map((s) => new Option(s, s)));
  const conditional = Boolean(m?.conditional);
  for (const [id, at] of [["from-class", 0], ["to-class", 1]]) {
    $(`${id}-label`).hidden = !conditional;
    if (!conditional) continue;
    $(id).replaceChildren(...m.classes.map((c) => new Option(c, c)));
    $(id).value = classes()[at];
  }
  $("endpoints").replaceChildren(...state.pinned.map((s) => new Option(`pinned seed ${s}`, s)),
                                 ...(projected() ? [new Option("your image", IMAGE)] : []),
                                 ...(previousImage() ? [new Option("your previous image", PREVIOUS)] : []));
  for (const [id, v] of [["from", state.from], ["to", state.to], ["space", state.space],
                         ["method", state.method], ["frames", state.frames]]) $(id).value = v;
}

function show(t) {
  if (!frames.length) return;
  state.t = Math.max(0, Math.min(frames.length - 1, t));
  const img = $("frame");
  img.src = frames[state.t];
  img.alt = `${state.model}: frame ${state.t + 1} of ${frames.length} from ${state.from} to ${state.to}`;
  $("scrub").value = String(state.t);
  $("frame-no").textContent = `${state.t + 1} / ${frames.length}`;
  img.dataset.frame = String(state.t);
}

export async function render() {
  if (!state.model) return;
  stop();
  defaults();
  writeUrl();
  const signal = next();
  await busy($("frame"), $("interp-error"), async () => {
    frames = [];                             // none until this request's arrive
    const out = await api(modelPath("interpolate"), { body: request("json"), signal });
    frames = out.images.map((i) => png(i.png));
    $("scrub").max = String(frames.length - 1);
    show(Math.min(state.t, frames.length - 1));
  });
  for (const id of ["scrub", "play"]) $(id).disabled = !frames.length;
}

function stop() {
  clearInterval(timer);
  timer = null;
  $("play").setAttribute("aria-pressed", "false");
  $("play").textContent = "Play";
}

function play() {
  if (timer || !frames.length) { stop(); return; }
  $("play").setAttribute("aria-pressed", "true");
  $("play").textContent = "Pause";
  let step = 1;
  timer = setInterval(() => {                // back and forth, like the GIF's loop
    if (state.t + step < 0 || state.t + step >= frames.length) step = -step;
    show(state.t + step);
  }, 80);
}

async function download(format) {
  try {
    const body = { ...request(format), scale: 4, frame_ms: 80 };
    const url = URL.createObjectURL(await blob(modelPath("interpolate"), body));
    const a = document.createElement("a");
    a.href = url;
    a.download = `ganserve-interpolation.${format}`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    showError($("interp-error"), "");
  } catch (e) {
    showError($("interp-error"), e.message);
  }
}

export function init() {
  for (const [id, field, kind] of [["from", "from"], ["to", "to"], ["space", "space"],
                                   ["method", "method"], ["frames", "frames", Number],
                                   ["from-class", "fromCls"], ["to-class", "toCls"]]) {
    $(id).addEventListener("change", () => {
      state[field] = kind ? kind($(id).value) : $(id).value.trim();
      render();
    });
  }
  $("interp-form").addEventListener("submit", (e) => e.preventDefault());
  $("scrub").addEventListener("input", () => { show(Number($("scrub").value)); writeUrl(); });
  $("play").addEventListener("click", play);
  $("gif").addEventListener("click", () => download("gif"));
  $("webp").addEventListener("click", () => download("webp"));
}

export const leave = stop;
