// Sample: a grid from seeds, re-rendered as psi moves; pins; a class picker (or one row
// per class) for conditional models; download and copy-as-curl of the current request.

import { api, apiKey, png } from "./api.js";
import { $, busy, current, latest, modelPath, state, versioned, writeUrl } from "./state.js";

const GRID = 8;
const SEED_MAX = 2 ** 31;
export const ALL_CLASSES = "*";
const next = latest();

export function randomSeeds(n = GRID) {
  const seeds = new Uint32Array(n);
  crypto.getRandomValues(seeds);
  return Array.from(seeds, (s) => s % SEED_MAX).join(",");
}

/** The sample or conditional request of one class (or none). */
function request(cls) {
  const body = versioned({ seeds: state.seeds, truncation_psi: state.psi, format: "json" });
  if (cls) body.class = cls;
  return { path: modelPath(cls ? "conditional" : "sample"), body };
}

export function fillClasses() {
  const m = current();
  const classes = m?.conditional ? m.classes : [];
  $("class-label").hidden = !classes.length;
  $("class").replaceChildren(...classes.map((c) => new Option(c, c)),
                             ...(classes.length ? [new Option("one row per class", ALL_CLASSES)] : []));
  if (classes.length && !classes.includes(state.cls) && state.cls !== ALL_CLASSES) state.cls = classes[0];
  if (!classes.length) state.cls = "";
  $("class").value = state.cls;
}

export async function render() {
  if (!state.model) return;
  if (!state.seeds) state.seeds = randomSeeds();
  $("seeds").value = state.seeds;
  writeUrl();
  const signal = next();
  const grid = $("grid");
  await busy(grid, $("error"), async () => {
    const classes = state.cls === ALL_CLASSES ? current().classes : [state.cls];
    const outs = await Promise.all(classes.map((c) => {
      const { path, body } = request(c);
      return api(path, { body, signal });
    }));
    grid.replaceChildren(...outs.flatMap((out) => out.images.map(tile)));
    // one row per class: as many columns as seeds (the grid scrolls sideways if need be)
    grid.style.gridTemplateColumns = classes.length > 1
      ? `repeat(${outs[0].images.length}, minmax(3rem, 1fr))` : "";
    grid.classList.toggle("by-class", classes.length > 1);
    $("download").href = png(outs[0].grid_png);
    $("download").hidden = classes.length > 1;
  });
  if (grid.classList.contains("stale")) $("download").hidden = true;    // not this request's
}

function tile(img) {
  const button = document.createElement("button");
  button.type = "button";
  const pinned = state.pinned.includes(img.seed);
  button.setAttribute("aria-pressed", String(pinned));
  button.title = `seed ${img.seed}: click to ${pinned ? "unpin" : "pin"}`;
  const label = img.class_name ? `${img.class_name}, seed ${img.seed}` : `seed ${img.seed}`;
  const figure = document.createElement("figure");
  const image = new Image();
  image.src = png(img.png);
  image.alt = `${state.model} sample, ${label}`;
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  figure.append(image, caption);
  button.append(figure);
  button.addEventListener("click", () => togglePin(img.seed));
  return button;
}

export function showPins() {
  $("pinned").textContent = state.pinned.length ? `pinned: ${state.pinned.join(", ")}` : "";
  for (const b of $("grid").querySelectorAll("button")) {
    const seed = Number(b.title.match(/seed (\d+)/)[1]);
    b.setAttribute("aria-pressed", String(state.pinned.includes(seed)));
  }
}

function togglePin(seed) {
  const at = state.pinned.indexOf(seed);
  if (at >= 0) state.pinned.splice(at, 1); else state.pinned.push(seed);
  showPins();
  writeUrl();
}

const shellQuote = (text) => `'${text.replaceAll("'", "'\\''")}'`;

/** The request(s) behind the grid as curl: one per class in "one row per class"; with an
 *  API key, its header reads $API_KEY (the key itself is not copied). */
function curl() {
  const classes = state.cls === ALL_CLASSES ? current().classes : [state.cls];
  const key = apiKey.get() ? ` -H "authorization: Bearer $API_KEY"` : "";
  return classes.map((c, i) => {
    const { path, body } = request(c);
    const out = classes.length > 1 ? `grid-${i}.png` : "grid.png";
    return `curl -s -X POST ${shellQuote(location.origin + path)}${key} ` +
           `-H 'content-type: application/json' ` +
           `-d ${shellQuote(JSON.stringify({ ...body, format: undefined }))} -o ${out}`;
  }).join("\n");
}

export function init() {
  $("class").addEventListener("change", () => { state.cls = $("class").value; render(); });
  $("seeds").addEventListener("change", () => { state.seeds = $("seeds").value.trim(); render(); });
  $("new-seeds").addEventListener("click", () => { state.seeds = randomSeeds(); render(); });
  $("sample-form").addEventListener("submit", (e) => e.preventDefault());
  $("copy-curl").addEventListener("click", async () => {
    const text = curl();
    $("curl").textContent = text;
    $("curl").hidden = false;
    await navigator.clipboard?.writeText(text).catch(() => {});
  });
}
