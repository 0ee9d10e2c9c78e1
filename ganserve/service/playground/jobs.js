// Jobs: upload a dataset (drag and drop; its validation errors shown as the API words
// them), fine-tune the current model on it or on Fashion-MNIST classes, follow the job
// live (step, ETA, loss curves, the latest grid), cancel it, open the new version, and
// evaluate a version beside its parent.

import { api, events, imageUrl, upload } from "./api.js";
import { lineChart } from "./chart.js";
import { figures, parentOf, table, versionOf } from "./quality.js";
import { $, current, dropZone, latest, models, showBlob, showError, state,
         writeUrl } from "./state.js";

const BUILTIN = "fashion-mnist";
const nextFollow = latest();
let app = null;                    // {open(model, version), reload()}: set by init
let losses = {};                   // loss name -> [[step, value]] of the followed job
let grids = 0;                     // progress grids asked for: only the last one is shown

// ---------------------------------------------------------------- datasets
async function sendDataset(file) {
  const form = new FormData();
  form.append("file", file);
  const name = $("dataset-name").value.trim();
  if (name) form.append("name", name);
  $("dataset-status").textContent = `uploading ${file.name}…`;
  $("dataset-preview").hidden = true;        // the last dataset's, not this one's
  showError($("dataset-error"), "");
  try {
    const d = await upload("/v1/datasets", form);
    const url = await imageUrl(`/v1/datasets/${d.id}/preview.png`);
    if (url) {
      showBlob($("dataset-preview"), url);
      Object.assign($("dataset-preview"), { hidden: false, alt: `the first images of dataset ${d.id}` });
    }
    await listDatasets(d.id);
    $("dataset-status").textContent = `dataset ${d.id}: ${d.images} images, ${d.resolution} px` +
      (d.classes?.length ? `, classes ${d.classes.map((c) => c.name ?? c).join(", ")}` : "");
  } catch (e) {
    $("dataset-status").textContent = "";
    showError($("dataset-error"), `${file.name}: ${e.message}`);
  }
}

async function listDatasets(chosen) {
  const select = $("ft-dataset");
  const keep = chosen ?? select.value;
  let uploaded = [];
  try { uploaded = (await api("/v1/datasets")).datasets ?? []; } catch { /* key-less view */ }
  select.replaceChildren(new Option("Fashion-MNIST (built in)", BUILTIN),
                         ...uploaded.map((d) => new Option(`${d.name ?? d.id} (${d.images} images)`, d.id)));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : BUILTIN;
  $("ft-classes-label").hidden = select.value !== BUILTIN;
}

// ---------------------------------------------------------------- submitting
function fineTuneBody() {
  const dataset = $("ft-dataset").value === BUILTIN ? { name: BUILTIN } : { id: $("ft-dataset").value };
  const classes = $("ft-classes").value.split(",").map((c) => c.trim()).filter(Boolean);
  if (dataset.name && classes.length) dataset.classes = classes;
  const body = { model: state.model, dataset, steps: Number($("ft-steps").value) };
  if (state.version) body.version = state.version;
  const every = Math.max(1, Math.round(body.steps / 10));     // ten progress grids
  return { ...body, sample_every: every, checkpoint_every: Math.max(every, 100) };
}

async function submit(path, body) {
  showError($("job-error"), "");
  try {
    const job = await api(path, { body });
    follow(job.id);
  } catch (e) {
    showError($("job-error"), e.message);
  }
}

function evaluateBody(model, version) {
  return { model, version, n: Number($("eval-n").value),
           metrics: ["fid", "kid", "precision", "recall", "classes"] };
}

// ---------------------------------------------------------------- following
export async function follow(id) {
  state.job = id;
  writeUrl();
  losses = {};
  const signal = nextFollow();
  for (const el of ["job-open", "job-evaluate", "job-result", "job-samples"]) $(el).hidden = true;
  for (const el of ["job-chart", "job-result"]) $(el).replaceChildren();
  for (const el of ["job-state", "job-status"]) $(el).textContent = "";
  Object.assign($("job-progress"), { value: 0, max: 1 });
  delete $("job").dataset.done;
  showError($("job-error"), "");
  let job;
  try {
    job = await api(`/v1/jobs/${id}`, { signal });
  } catch (e) {                              // e.g. a link to a job that is gone
    if (e.name === "AbortError") return;
    showError($("job-error"), `job ${id}: ${e.message}`);
    $("job").hidden = true;
    state.job = "";
    writeUrl();
    return;
  }
  $("job").hidden = false;
  $("job-cancel").hidden = false;
  try {
    $("job-title").textContent = `${job.type} of ${job.model}${job.version ? `/${job.version}` : ""} (job ${id})`;
    await events(`/v1/jobs/${id}/events`, (event, data) => {
      if (event === "state") $("job-state").textContent = data.state;
      if (event === "progress") progress(id, data, signal);
      if (event === "end") end(data);
      if (event === "error") showError($("job-error"), data.message);
    }, signal);
  } catch (e) {
    if (e.name !== "AbortError") showError($("job-error"), e.message);
  }
}

function progress(id, p, signal) {
  $("job-progress").max = p.total_steps || 1;
  $("job-progress").value = p.step ?? 0;
  $("job-status").textContent = [
    p.stage, p.activity, p.step != null ? `step ${p.step} of ${p.total_steps}` : "",
    p.eta_s != null ? `about ${Math.ceil(p.eta_s)} s left` : "",
    p.images_per_s ? `${p.images_per_s} images/s` : ""].filter(Boolean).join(" · ");
  for (const [name, v] of Object.entries(p.losses ?? {})) {
    (losses[name] ??= []).push([p.step, v]);
  }
  if (Object.keys(losses).length) $("job-chart").replaceChildren(lineChart("losses", losses));
  if (p.samples) {                       // a progress grid exists (no 404 to log)
    const asked = ++grids;
    imageUrl(`/v1/jobs/${id}/samples.png`, signal).then((url) => {
      if (!url) return;
      if (asked !== grids) { URL.revokeObjectURL(url); return; }   // a newer one is coming
      showBlob($("job-samples"), url);
      Object.assign($("job-samples"), { hidden: false, alt: `the job's latest samples, step ${p.step}` });
    }).catch(() => {});
  }
}

async function end(job) {
  $("job-state").textContent = job.state;
  $("job-cancel").hidden = true;
  $("job-progress").value = job.state === "succeeded" ? $("job-progress").max : $("job-progress").value;
  if (job.state !== "succeeded") {
    showError($("job-error"), `the job ${job.state}${job.error ? `: ${job.error}` : ""}`);
    $("job").dataset.done = job.state;
    return;
  }
  const r = job.result ?? {};
  await app.reload();                  // a new version, or new figures for one
  if (job.type === "fine-tune") {
    $("job-status").textContent = `published ${r.model}/${r.version}`;
    Object.assign($("job-open"), { hidden: false, textContent: `Open ${r.model}/${r.version}` });
    $("job-open").onclick = () => app.open(r.model, r.version);
    Object.assign($("job-evaluate"), { hidden: false, textContent: `Evaluate ${r.model}/${r.version}` });
    $("job-evaluate").onclick = () => submit("/v1/jobs/evaluate", evaluateBody(r.model, r.version));
  }
  if (job.type === "evaluate") showEvaluation(job);
  $("job").dataset.done = job.state;
}

/** An evaluation's numbers beside the version's parent's (as the store has them). */
function showEvaluation(job) {
  const m = models.find((x) => x.name === job.model);
  const v = m && versionOf(m, job.version ?? job.result?.version);
  const columns = { [`version ${job.version} (this job)`]: figures(job.result) };
  const parent = parentOf(v);
  if (parent) columns[`parent ${v.parent}`] = figures(parent.metrics);
  $("job-result").replaceChildren(table(columns));
  $("job-result").hidden = false;
}

// ---------------------------------------------------------------- wiring
export function render() {
  const m = current();
  $("ft-model").textContent = m ? `${m.name}${state.version ? `/${state.version}` : ` (default ${m.default})`}` : "";
  $("eval-version").textContent = state.version || m?.default || "";
  listDatasets();
  if (state.job && $("job").hidden) follow(state.job);
}

export function init(appApi) {
  app = appApi;
  dropZone($("dataset-drop"), $("dataset-file"), sendDataset);
  $("ft-dataset").addEventListener("change", () => {
    $("ft-classes-label").hidden = $("ft-dataset").value !== BUILTIN;
  });
  $("ft-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit("/v1/jobs/fine-tune", fineTuneBody());
  });
  $("eval-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit("/v1/jobs/evaluate", evaluateBody(state.model, state.version || current()?.default));
  });
  $("job-cancel").addEventListener("click", async () => {
    try { await api(`/v1/jobs/${state.job}/cancel`, { body: {} }); }
    catch (e) { showError($("job-error"), e.message); }
  });
}
