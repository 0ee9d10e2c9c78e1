// Your image: drop or pick an image; the encoder's projection comes back at once, the
// refined one from a project job with its progress and loss curve. Then edit it (or a
// seed) with the direction sliders, or take it to Interpolate / Style mix.

import { api, events, fileBase64, imageUrl, png } from "./api.js";
import { lineChart } from "./chart.js";
import { $, busy, can, current, dropZone, latest, memory, modelPath, projected, showBlob,
         showError, state, versioned, writeUrl } from "./state.js";

const PRINCIPAL = 4;              // sliders for the first principal axes
const nextEdit = latest();
const nextJob = latest();
const nextProject = latest();
let directions = { key: "", list: [] };

// ---------------------------------------------------------------- projecting
/** The encoder's projection of ``file`` into the current model and version. The page's
 *  projection changes only when it succeeds (a refused file leaves the last one), and a
 *  newer file aborts an older one's request. */
async function project(file) {
  const signal = nextProject();
  const where = { model: state.model, version: state.version };
  let projectedNow = false;
  await busy($("projected"), $("image-error"), async () => {
    const image = await fileBase64(file);
    const out = await api(modelPath("project"), { body: versioned({ image }), signal });
    nextJob();                               // stop following the last image's refining
    if (memory.projected) memory.previous = memory.projected;   // interpolate image to image
    setProjected(out, "encoder (one pass)", { ...where, image });
    projectedNow = true;
    $("image-input").src = png(out.input);
    $("image-input").alt = "your image as the model sees it";
    $("refine-status").textContent = "";
    $("refine-chart").replaceChildren();
    $("refine-progress").value = 0;
  });
  if (projectedNow) {
    $("edit-start").value = "image";         // a new projection: edit it
    await renderEdit();
  }
}

/** ``out``: /project's answer or a project job's result; ``where``: the model, version and
 *  image it belongs to. */
function setProjected(out, method, where) {
  const [latentName, latent] = Object.entries(out.latent)[0];
  memory.projected = { ...where, latentName, latent, cls: out.class_name ?? null };
  const img = $("projected");
  showBlob(img, png(out.image));
  img.alt = `the projection of your image into ${where.model} (${method})`;
  const s = out.scores;
  $("image-scores").textContent = `${method}: PSNR ${s.psnr.toFixed(2)} dB, SSIM ` +
    `${s.ssim.toFixed(3)}${out.class_name ? `, class ${out.class_name}` : ""}`;
  showProjection();
}

/** The projection's panels, shown only while it belongs to the model and version picked. */
function showProjection() {
  const p = projected();
  for (const id of ["image-pair", "refine-form", "image-actions"]) $(id).hidden = !p;
  $("go-mix").hidden = !can("style-mix");
  $("refine").disabled = !p || Boolean($("refine-cancel").dataset.running);
  const start = $("edit-start");
  start.querySelector("[value=image]").disabled = !p;
  if (!p) start.value = "seed";
}

async function refine() {
  const p = projected();
  if (!p) return;
  const signal = nextJob();
  const steps = Number($("refine-steps").value);
  const body = { model: p.model, image: p.image, steps, ...(p.version ? { version: p.version } : {}) };
  if (p.cls) body.class = p.cls;
  $("refine").disabled = true;
  $("refine-cancel").hidden = false;
  $("refine-cancel").dataset.running = "yes";
  try {
    const job = await api("/v1/jobs/project", { body, signal });
    $("refine-cancel").dataset.job = job.id;
    await events(`/v1/jobs/${job.id}/events`, (event, data) => {
      if (event === "state") $("refine-status").textContent = data.state;
      if (event === "progress" && memory.projected === p) refineProgress(job.id, data, signal);
      if (event === "end") refineEnd(data, p);
      if (event === "error") showError($("image-error"), data.message);
    }, signal);
  } catch (e) {
    if (e.name !== "AbortError") showError($("image-error"), e.message);
  } finally {
    delete $("refine-cancel").dataset.running;
    $("refine-cancel").hidden = true;
    showProjection();
  }
}

/** The job's loss history (evenly thinned over the steps so far) as [step, loss]. */
const spread = (history, step) => history.map(
  (v, i) => [Math.round((i * step) / Math.max(1, history.length - 1)), v]);

async function refineProgress(id, p, signal) {
  const bar = $("refine-progress");
  bar.max = p.total_steps ?? 1;
  bar.value = p.step ?? 0;
  $("refine-status").textContent = `${p.stage ?? ""} step ${p.step ?? 0} of ${p.total_steps}` +
    (p.eta_s != null ? `, about ${Math.ceil(p.eta_s)} s left` : "") +
    (p.loss != null ? `, loss ${p.loss.toFixed(4)}` : "");
  if (p.history?.length) {
    $("refine-chart").replaceChildren(lineChart("projection loss",
      { loss: spread(p.history, p.step) }));
  }
  if (p.stage !== "refining") return;          // no reconstruction written before
  const url = await imageUrl(`/v1/jobs/${id}/samples.png`, signal).catch(() => null);
  if (url) showBlob($("projected"), url);    // an aborted follow fetches nothing
}

/** The job's end: its refined latent replaces the encoder's, for the image it started from. */
async function refineEnd(job, start) {
  if (job.state !== "succeeded") {
    showError($("image-error"), `the project job ${job.state}${job.error ? `: ${job.error}` : ""}`);
    return;
  }
  if (memory.projected !== start) return;    // another image was projected meanwhile
  setProjected(job.result, `refined (${job.result.steps} steps)`, start);
  $("refine-progress").value = $("refine-progress").max;
  if (job.result.history?.length) {
    $("refine-chart").replaceChildren(lineChart("projection loss",
      { loss: spread(job.result.history, job.result.steps) }));
  }
  $("refine-status").textContent = `done: from PSNR ${job.result.start_scores.psnr.toFixed(2)}` +
    ` dB to ${job.result.scores.psnr.toFixed(2)} dB`;
  $("projected").dataset.rendered = String(performance.now());
  await renderEdit();
}

// ---------------------------------------------------------------- editing
async function loadDirections() {
  const key = `${state.model}/${state.version}`;
  if (directions.key === key) return directions.list;
  const q = state.version ? `?version=${encodeURIComponent(state.version)}` : "";
  const out = await api(`${modelPath("directions")}${q}`);    // a failure is not cached
  directions = { key, list: out.directions };
  return directions.list;
}

function slider(name, label, min, max) {
  const wrap = document.createElement("label");
  wrap.className = "slider";
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min, max, step: 0.1, value: state.dirs[name] ?? 0 });
  input.dataset.direction = name;
  const out = document.createElement("output");
  out.textContent = Number(input.value).toFixed(1);
  input.addEventListener("input", () => {
    state.dirs[name] = Number(input.value);
    out.textContent = Number(input.value).toFixed(1);
    renderEdit();
  });
  wrap.append(`${label} `, input, out);
  return wrap;
}

function classPair(list) {
  const pairs = list.filter((d) => d.kind === "class");
  const chosen = Object.keys(state.dirs).find((n) => pairs.some((d) => d.name === n));
  const select = $("direction-pair");
  select.replaceChildren(...pairs.map((d) => new Option(
    `${d.name}${d.info?.flip != null ? ` (flips ${(100 * d.info.flip).toFixed(0)}%)` : ""}`,
    d.name)));
  select.value = chosen ?? pairs[0]?.name ?? "";
  $("pair-amount").value = String(state.dirs[select.value] ?? 0);
  $("pair-amount-value").textContent = Number($("pair-amount").value).toFixed(1);
  $("pair-label").hidden = !pairs.length;
}

export async function showSliders() {
  const box = $("sliders");
  try {
    const list = await loadDirections();
    box.replaceChildren(...list.filter((d) => d.kind === "principal").slice(0, PRINCIPAL)
      .map((d) => slider(d.name, d.name, -3, 3)));
    classPair(list);
    $("edit-form").hidden = false;
    showError($("edit-error"), "");
  } catch (e) {
    $("edit-form").hidden = true;
    showError($("edit-error"), e.message);
  }
}

function editRequest() {
  const p = projected();
  const moved = Object.fromEntries(Object.entries(state.dirs).filter(([, v]) => v));
  const body = versioned({ directions: moved, truncation_psi: state.psi, format: "json",
                           scale: 4 });
  if (p && $("edit-start").value === "image") {
    body[p.latentName] = p.latent;
    if (p.cls) body.class = p.cls;
  } else {
    const seed = Number(state.eseed || 0);
    if (!Number.isInteger(seed) || seed < 0) {
      throw new Error(`Seed: “${state.eseed}” is not a seed (a whole number ≥ 0)`);
    }
    body.seed = seed;
    const m = current();
    if (m?.conditional) body.class = m.classes.includes(state.cls) ? state.cls : m.classes[0];
  }
  return body;
}

export async function renderEdit() {
  showProjection();
  $("eseed").value = state.eseed || "0";
  writeUrl();
  const signal = nextEdit();
  await busy($("edited"), $("edit-error"), async () => {
    const out = await api(modelPath("edit"), { body: editRequest(), signal });
    $("edited").src = png(out.images[0].png);
    const moved = Object.entries(state.dirs).filter(([, v]) => v)
      .map(([k, v]) => `${k} ${v > 0 ? "+" : ""}${v}`).join(", ") || "unedited";
    $("edited").alt = `${$("edit-start").value === "image" ? "your image" : `seed ${state.eseed || 0}`}` +
      ` in ${state.model}, ${moved}`;
  });
}

export async function render() {
  if (!state.model) return;
  showProjection();
  await showSliders();
  $("edited").hidden = $("edit-form").hidden;
  if (!$("edit-form").hidden) await renderEdit();
}

export function init() {
  dropZone($("drop"), $("image-file"), project);
  $("refine").addEventListener("click", refine);
  $("refine-cancel").addEventListener("click", async () => {
    const id = $("refine-cancel").dataset.job;
    if (id) await api(`/v1/jobs/${id}/cancel`, { body: {} }).catch(() => {});
  });
  $("direction-pair").addEventListener("change", () => {
    for (const d of directions.list) if (d.kind === "class") delete state.dirs[d.name];
    state.dirs[$("direction-pair").value] = Number($("pair-amount").value);
    renderEdit();
  });
  $("pair-amount").addEventListener("input", () => {
    const name = $("direction-pair").value;
    state.dirs[name] = Number($("pair-amount").value);
    $("pair-amount-value").textContent = Number($("pair-amount").value).toFixed(1);
    renderEdit();
  });
  $("edit-start").addEventListener("change", renderEdit);
  $("eseed").addEventListener("change", () => { state.eseed = $("eseed").value.trim(); renderEdit(); });
  $("edit-reset").addEventListener("click", () => { state.dirs = {}; showSliders().then(renderEdit); });
  for (const f of ["edit-form", "refine-form"]) $(f).addEventListener("submit", (e) => e.preventDefault());
}
