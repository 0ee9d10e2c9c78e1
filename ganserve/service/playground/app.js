// The playground's entry: the model and version pickers, the API key, the shared psi
// slider and the tabs; each mode lives in its own module (sample, interpolate, mix, image,
// quality, jobs) and renders from the shared state. The public REST API only.

import { api, apiKey } from "./api.js";
import * as image from "./image.js";
import * as interpolate from "./interpolate.js";
import * as jobs from "./jobs.js";
import * as mix from "./mix.js";
import * as quality from "./quality.js";
import * as sample from "./sample.js";
import { $, MODES, current, readUrl, setModels, showError, state, writeUrl } from "./state.js";

const VIEWS = { sample, interpolate, mix, image, quality, jobs };
const USES_PSI = new Set(["sample", "interpolate", "mix", "image"]);

// ---------------------------------------------------------------- models
function fillModels(models) {
  $("model").replaceChildren(...models.map((m) => new Option(`${m.name} (${m.family})`, m.name)));
  if (!current()) state.model = models[0]?.name ?? "";
  $("model").value = state.model;
  fillModel();
}

function fillModel() {
  const m = current();
  if (!m) return;
  const versions = m.versions.filter((v) => v.status === "ready").map((v) => v.version);
  $("version").replaceChildren(new Option(`default (${m.default})`, ""),
                               ...versions.map((v) => new Option(v, v)));
  if (state.version && !versions.includes(state.version)) state.version = "";
  $("version").value = state.version;
  sample.fillClasses();
  const v = m.versions.find((x) => x.version === (state.version || m.default));
  const fid = quality.figures(v?.metrics)?.fid;
  $("model-facts").textContent = [
    `${m.family}, ${m.resolution} px, ${m.channels === 1 ? "grey" : "colour"}`,
    m.classes.length ? `${m.classes.length} classes` : "",
    fid !== undefined ? `FID ${Number(fid).toFixed(2)}` : "",
    `versions ${versions.join(", ")}`].filter(Boolean).join(" · ");
  $("tab-mix").hidden = !m.capabilities.includes("style-mix");
}

async function loadModels() {
  const models = (await api("/v1/models")).models;
  setModels(models);
  return models;
}

// ---------------------------------------------------------------- modes
function select(mode, focus = false) {
  if ($(`tab-${mode}`).hidden) mode = "sample";      // e.g. Style mix of a DCGAN
  if (state.mode !== mode) VIEWS[state.mode]?.leave?.();
  state.mode = mode;
  for (const m of MODES) {
    const tab = $(`tab-${m}`);
    tab.setAttribute("aria-selected", String(m === mode));
    tab.tabIndex = m === mode ? 0 : -1;
    $(`panel-${m}`).hidden = m !== mode;
  }
  if (focus) $(`tab-${mode}`).focus();
  $("psi-bar").hidden = !USES_PSI.has(mode);
  writeUrl();
  return VIEWS[mode].render();
}

const rerender = () => select(state.mode);

/** Arrow keys, Home and End move between the tabs (the WAI-ARIA tabs pattern). */
function tabKeys(e) {
  const shown = MODES.filter((m) => !$(`tab-${m}`).hidden);
  const at = shown.indexOf(document.activeElement.id.replace(/^tab-/, ""));
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: shown.length - 1 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  select(shown[(to + shown.length) % shown.length], true);
}

/** Jobs' "open the new version": sample it. A request naming it is served at once (the
 *  registry loads it then); the listing, re-read after that request, then shows it. */
async function open(model, version) {
  Object.assign(state, { model, version, mode: "sample", seeds: "" });
  await select("sample");
  fillModels(await loadModels());
  writeUrl();
}

// ---------------------------------------------------------------- wiring
function wire() {
  $("model").addEventListener("change", () => {
    Object.assign(state, { model: $("model").value, version: "", dirs: {}, styles: "middle" });
    fillModel();
    rerender();
  });
  $("version").addEventListener("change", () => {
    state.version = $("version").value;
    fillModel();
    rerender();
  });
  $("psi").addEventListener("input", () => {
    state.psi = Number($("psi").value);
    $("psi-value").textContent = state.psi.toFixed(2);
    rerender();
  });
  for (const m of MODES) $(`tab-${m}`).addEventListener("click", () => select(m));
  $("tabs").addEventListener("keydown", tabKeys);
  $("api-key").value = apiKey.get();
  $("api-key").addEventListener("change", async () => {
    apiKey.set($("api-key").value.trim());
    await start();
  });
  $("image-actions").addEventListener("click", (e) => {
    const to = e.target.dataset?.go;
    if (!to) return;
    if (to === "interpolate") Object.assign(state, { from: interpolate.IMAGE, to: state.to || "3" });
    select(to, true);
  });
  const reload = async () => fillModels(await loadModels());
  for (const view of Object.values(VIEWS)) view.init?.({ open, reload });
}

async function start() {
  try {
    const models = await loadModels();
    if (!models.length) throw new Error("no models are served yet (see GET /v1/models)");
    showError($("page-error"), "");
    fillModels(models);
  } catch (e) {
    showError($("page-error"), e.message);
    return;
  }
  await select(state.mode);
}

readUrl();
$("psi").value = String(state.psi);
$("psi-value").textContent = state.psi.toFixed(2);
wire();
sample.showPins();
start();
