// Quality: a version's figures (FID and KID, precision and recall, the share of each class
// the classifier sees) as charts and a table, beside its parent's.

import { barChart } from "./chart.js";
import { $, current, models, state } from "./state.js";

const SCORES = [["fid", "FID (lower is better)"], ["kid", "KID (lower is better)"],
                ["precision", "precision"], ["recall", "recall"]];

/** A version's metrics ({fid, ...} or keyed by feature extractor) -> the flat figures. */
export function figures(metrics) {
  if (!metrics) return null;
  if (metrics.fid !== undefined || metrics.precision !== undefined) return metrics;
  const nested = Object.values(metrics).filter((v) => v && typeof v === "object"
                                                      && (v.fid !== undefined || v.precision !== undefined));
  return nested[0] ?? null;
}

export const versionOf = (m, v) => m.versions.find((x) => x.version === v);

/** A version's parent ("name/version", maybe another model's) as the served version info. */
export function parentOf(v) {
  if (!v?.parent) return null;
  const [name, version] = String(v.parent).split("/");
  return models.find((m) => m.name === name)?.versions.find((x) => x.version === version) ?? null;
}

/** The table of ``columns`` ({label: figures}) row by row; missing figures as "–". */
export function table(columns) {
  const t = document.createElement("table");
  const labels = Object.keys(columns);
  t.innerHTML = "<thead><tr><th scope=col>figure</th></tr></thead><tbody></tbody>";
  for (const l of labels) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = l;
    t.tHead.rows[0].append(th);
  }
  for (const [key, label] of SCORES) {
    const row = t.tBodies[0].insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    row.append(th);
    for (const l of labels) {
      const v = columns[l]?.[key];
      row.insertCell().textContent = Number.isFinite(v) ? String(Number(v.toPrecision(4))) : "–";
    }
  }
  return t;
}

/** Charts comparing ``columns`` ({label: figures}): the scores, then the class shares. */
export function charts(columns) {
  const labels = Object.keys(columns);
  const out = [barChart("FID and KID×100", [
    { label: "FID", values: Object.fromEntries(labels.map((l) => [l, columns[l]?.fid])) },
    { label: "KID×100", values: Object.fromEntries(labels.map((l) => [l, 100 * columns[l]?.kid])) },
  ], labels), barChart("precision and recall", ["precision", "recall"].map((k) => (
    { label: k, values: Object.fromEntries(labels.map((l) => [l, columns[l]?.[k]])) })), labels)];
  const classes = [...new Set(labels.flatMap((l) => Object.keys(columns[l]?.class_histogram ?? {})))];
  if (classes.length) {
    out.push(barChart("share of each class (the classifier's call)", classes.map((c) => (
      { label: c, values: Object.fromEntries(labels.map((l) => [l, columns[l]?.class_histogram?.[c]])) })),
    labels));
  }
  return out;
}

/** Every served model in one table: family, shape, classes, versions, the default's FID;
 *  each name links to its own quality view. */
function overview() {
  const t = document.createElement("table");
  t.className = "models";
  t.createCaption().textContent = "Served models";
  const head = t.createTHead().insertRow();
  for (const h of ["model", "family", "resolution", "classes", "versions", "default", "FID"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = h;
    head.append(th);
  }
  const body = t.createTBody();
  for (const m of models) {
    const row = body.insertRow();
    const link = document.createElement("a");
    link.href = `?model=${encodeURIComponent(m.name)}&mode=quality`;
    link.textContent = m.name;
    const name = document.createElement("th");
    name.scope = "row";
    name.append(link);
    row.append(name);
    const fid = figures(versionOf(m, m.default)?.metrics)?.fid;
    for (const v of [m.family, `${m.resolution} px`, m.classes.length || "–",
                     m.versions.map((x) => x.version).join(", "), m.default,
                     Number.isFinite(fid) ? fid.toFixed(2) : "–"]) {
      row.insertCell().textContent = String(v ?? "–");
    }
  }
  return t;
}

export function render() {
  const m = current();
  if (!m) return;
  $("models-overview").replaceChildren(overview());
  const v = versionOf(m, state.version || m.default);
  const box = $("quality");
  if (!v) { box.replaceChildren(); return; }
  const columns = { [`version ${v.version}`]: figures(v.metrics) };
  const parent = parentOf(v);
  if (parent) columns[`parent ${v.parent}`] = figures(parent.metrics);
  const floor = figures(v.metrics)?.floor;
  if (floor) columns["real images (floor)"] = floor;
  const heading = document.createElement("p");
  heading.textContent = `${m.name} version ${v.version}` +
    (v.parent ? `, fine-tuned from ${v.parent}` : ", trained from scratch") +
    (v.training?.steps ? `, ${v.training.steps} steps` : "");
  if (!columns[`version ${v.version}`]) {
    const none = document.createElement("p");
    none.textContent = "This version has no quality figures yet: run an evaluation in Jobs.";
    box.replaceChildren(heading, none);
    return;
  }
  box.replaceChildren(heading, table(columns), ...charts(columns));
  box.dataset.rendered = String(performance.now());
}
