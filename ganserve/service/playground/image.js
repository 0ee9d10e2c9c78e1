// Your image: drop or pick an image; the encoder's projection comes back at once, the
// refined one from a project job with its progress and loss curve. Then edit it (or a
// seed) with the direction sliders, or take it to Interpolate / Style mix.

import { api, events, fileBase64, imageUrl, png } from "./api.js";
import { lineChart } from "./chart.js";
import { $, busy, current, dropZone, latest, memory, modelPath, showError, state, versioned,
         writeUrl } from "./state.js";

const PRINCIPAL = 4;              // sliders for the first principal axes
const nextEdit = latest();
const nextJob = latest();
let upload = null;                // the dropped image's base64, for the refining job
let directions = { key: "", list: [] };

// ---------------------------------------------------------------- projecting
async function project(file) {
  upload = await fileBase64(file);
  if (memory.projected) memory.previous = memory.projected;   // interpolate image to image
  memory.projected = null;
  const body = versioned({ image: upload });

  await busy($("projected"), $("image-error"), async () => {
    const out = await api(modelPath("project"), { body });
    setProjected(out, "encoder (one pass)");
    $("refine").disabled = false;
    $("image-pair").hidden = false;
    $("refine-form").hidden = false;
    $("image-input").src = png(out.input);
    $("image-input").alt = "your image as the model sees it";
  });
  if (memory.projected) await renderEdit();

}

function setProjected(out, method) {
  const [latentName, latent] = Object.entries(out.latent)[0];
  memory.projected = { latentName, latent, cls: out.class_name ?? null };
  const img = $("projected");
  img.src = png(out.image);
  img.alt = `the projection of your image into ${state.model} (${method})`;
  const s = out.scores;
  $("image-scores").textContent = `${method}: PSNR ${s.psnr.toFixed(2)} dB, SSIM ` +
    `${s.ssim.toFixed(3)}${out.class_name ? `, class ${out.class_name}` : ""}`;
  $("image-actions").hidden = false;
}

async function refine() {
  const signal = nextJob();
  const steps = Number($("refine-steps").value);
  const body = versioned({ model: state.model, image: upload, steps });
  if (memory.projected?.cls) body.class = memory.projected.cls;
  $("refine").disabled = true;
  $("refine-cancel").hidden = false;
  try {
    const job = await api("/v1/jobs/project", { body, signal });
    $("refine-cancel").dataset.job = job.id;
    await events(`/v1/jobs/${job.id}/events`, (event, data) => {
      if (event === "state") $("refine-status").textContent = data.state;
      if (event === "progress") refineProgress(job.id, data, signal);
      if (event === "end") refineEnd(data);
      if (event === "error") showError($("image-error"), data.message);
    }, signal);
  } catch (e) {
    if (e.name !== "AbortError") showError($("image-error"), e.message);
  } finally {
    $("refine").disabled = false;
    $("refine-cancel").hidden = true;
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
  if (url) $("projected").src = url;
}

async function refineEnd(job) {
  if (job.state !== "succeeded") {
    showError($("image-error"), `the project job ${job.state}${job.error ? `: ${job.error}` : ""}`);
    return;
  }
  setProjected(job.result, `refined (${job.result.steps} steps)`);
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
  directions = { key, list: [] };
  const q = state.version ? `?version=${encodeURIComponent(state.version)}` : "";
  const out = await api(`${modelPath("directions")}${q}`);
  directions.list = out.directions;
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
  const p = memory.projected;
  const moved = Object.fromEntries(Object.entries(state.dirs).filter(([, v]) => v));
  const body = versioned({ directions: moved, truncation_psi: state.psi, format: "json",
                           scale: 4 });
  if (p && $("edit-start").value === "image") {
    body[p.latentName] = p.latent;
    if (p.cls) body.class = p.cls;
  } else {
    body.seed = Number(state.eseed || 0);
    const m = current();
    if (m?.conditional) body.class = m.classes.includes(state.cls) ? state.cls : m.classes[0];
  }
  return body;
}

export async function renderEdit() {
  $("edit-start").querySelector("[value=image]").disabled = !memory.projected;
  if (memory.projected && document.activeElement !== $("edit-start")) $("edit-start").value = "image";
  if (!memory.projected) $("edit-start").value = "seed";
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
  await showSliders();
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
