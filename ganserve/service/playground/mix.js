// Style mix (StyleGAN): row and column seeds (your projected image can be the first row),
// the layers as a named preset (coarse, middle, fine) or a range on two sliders; the grid
// re-renders as they move.

import { api, png } from "./api.js";
import { $, busy, can, current, latest, modelPath, projected, showError, state, versioned,
         writeUrl } from "./state.js";
import { randomSeeds } from "./sample.js";

const PRESETS = ["coarse", "middle", "fine"];
const next = latest();

function seeds(text, field) {
  const list = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new Error(`${field}: give at least one seed`);
  return list.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${field}: “${s}” is not a seed`);
    return { seed: n };
  });
}

/** The layers ``state.styles`` names: a preset's (as the API defines it) or "a-b". */
function layers() {
  const groups = current()?.style_layers ?? {};
  if (groups[state.styles]?.length) return groups[state.styles];
  const [a, b] = state.styles.split("-").map(Number);
  return Number.isInteger(a) && Number.isInteger(b) ? [a, b] : [0, 0];
}

function syncControls() {
  const m = current();
  const last = (m?.num_ws ?? 1) - 1;
  for (const id of ["layer-from", "layer-to"]) $(id).max = String(last);
  const chosen = layers();
  $("layer-from").value = String(chosen[0]);
  $("layer-to").value = String(chosen.at(-1));
  $("preset").value = PRESETS.includes(state.styles) ? state.styles : "custom";
  $("layers-value").textContent = `layers ${chosen[0]}–${chosen.at(-1)} of 0–${last}`;
  $("mix-rows").value = state.rows;
  $("mix-cols").value = state.cols;
  $("mix-image-label").hidden = !projected();
}

function request() {
  const rows = seeds(state.rows, "rows");
  const p = projected();
  if (p && $("mix-image").checked) rows.unshift({ [p.latentName]: p.latent });
  return versioned({ row_sources: rows, col_sources: seeds(state.cols, "columns"),
                     styles: state.styles, truncation_psi: state.psi, format: "json",
                     scale: 2 });
}

export async function render() {
  if (!state.model) return;
  const usable = can("style-mix");
  $("mix-unavailable").hidden = usable;
  for (const id of ["mix-form", "mix-grid"]) $(id).hidden = !usable;
  if (!usable) return;
  if (!state.rows) state.rows = randomSeeds(3).replaceAll(",", ", ");   // a first visit
  if (!state.cols) state.cols = randomSeeds(4).replaceAll(",", ", ");
  syncControls();
  writeUrl();
  const signal = next();
  await busy($("mix-grid"), $("mix-error"), async () => {
    const out = await api(modelPath("style-mix"), { body: request(), signal });
    const img = $("mix-grid");
    img.src = png(out.grid_png);
    const [rows, cols] = [request().row_sources.length, request().col_sources.length];
    img.alt = `style-mix grid of ${state.model}: ${rows} rows by ${cols} columns, the ` +
              `columns' styles at ${state.styles} over each row`;
  });
}

export function init() {
  $("preset").addEventListener("change", () => {
    const chosen = $("preset").value;
    state.styles = chosen !== "custom" ? chosen        // custom: the sliders' range, as shown
      : `${$("layer-from").value}-${$("layer-to").value}`;
    render();
  });
  for (const id of ["layer-from", "layer-to"]) {
    $(id).addEventListener("input", () => {
      let [a, b] = [Number($("layer-from").value), Number($("layer-to").value)];
      if (a > b) [a, b] = id === "layer-from" ? [a, a] : [b, b];
      state.styles = `${a}-${b}`;
      render();
    });
  }
  for (const [id, field, what] of [["mix-rows", "rows", "Row"], ["mix-cols", "cols", "Column"]]) {
    $(id).addEventListener("change", () => {
      if (!$(id).value.trim()) {             // said, not silently refilled with random seeds
        showError($("mix-error"), `${what} seeds: give at least one seed`);
        $("mix-grid").classList.add("stale");
        return;
      }
      state[field] = $(id).value;
      render();
    });
  }
  $("mix-image").addEventListener("change", render);
  $("mix-new").addEventListener("click", () => { state.rows = ""; state.cols = ""; render(); });
  $("mix-form").addEventListener("submit", (e) => e.preventDefault());
}
