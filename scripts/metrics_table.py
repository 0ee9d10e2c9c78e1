"""Print the shipped models' evaluation metrics and training costs as markdown tables.

    python scripts/metrics_table.py [--models models]

Metrics are the model card's (``ganserve.evaluations.effective_metrics``): the manifest's
shipped values overlaid by newer evaluation records; FID cells name their n when it is not
the same for every row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganserve.evaluations import effective_metrics  # noqa: E402
from ganserve.manifest import Manifest, list_versions, load_manifest  # noqa: E402

KEY = "fashion-mnist-classifier"


def _n(r: dict, metric: str) -> int | None:
    """n of the evaluation the card's value of ``metric`` came from."""
    return r["evaluations"].get(r["sources"].get(metric), {}).get("n")


def _fmt(r: dict, key: str, spec: str) -> str:
    return format(r[key], spec) if key in r else "–"


def _row(m: Manifest, r: dict, fid_n: str) -> str:
    cond = (f"{r['conditional_accuracy']:.3f} / {r['conditional_accuracy_min']:.3f}"
            if "conditional_accuracy" in r else "–")
    share = (f"{r['class_share_min']:.3f}–{r['class_share_max']:.3f}"
             if "class_share_min" in r else "–")
    mem = f"{r['memorization']['memorized_share']:.2%}" if "memorization" in r else "–"
    return (f"| {m.name}/{m.version} | {r['fid']:.3f}{fid_n} | {_fmt(r, 'kid', '.4f')} | "
            f"{_fmt(r, 'precision', '.3f')} | {_fmt(r, 'recall', '.3f')} | {share} | "
            f"{_fmt(r, 'class_entropy_bits', '.3f')} | {cond} | {mem} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="models")
    args = ap.parse_args()
    rows: list[tuple[Manifest, dict]] = []
    for d in sorted(Path(args.models).iterdir()):
        if d.name.startswith(("_", ".")) or not list_versions(d):
            continue
        vdir = d / list_versions(d)[-1]
        m = load_manifest(vdir)
        card = effective_metrics(vdir, m).get(KEY)
        if card and "fid" in card:
            rows.append((m, card))
    floor = rows[0][1]["floor"] if rows else {}
    fid_ns = {_n(r, "fid") for _, r in rows}
    same_n = len(fid_ns) == 1 and None not in fid_ns
    fid_head = f"FID ({next(iter(fid_ns)) / 1000:g}k)" if same_n else "FID"
    print(f"| model | {fid_head} | KID | precision | recall | class share min–max | "
          "class entropy (bits) | cond. acc. mean / worst | memorized |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m, r in rows:
        print(_row(m, r, "" if same_n else f" (n={_n(r, 'fid')})"))
    if floor:
        print(f"| real vs real (10k train / test) | {floor['fid']:.3f} | {floor['kid']:.4f} | "
              f"{floor['precision']:.3f} | {floor['recall']:.3f} | 0.100–0.100 | 3.322 | "
              "0.9365 (classifier) | 1% by construction |")
    print()
    print("| model | steps × batch | images seen | wall time | images/s | command |")
    print("|---|---:|---:|---:|---:|---|")
    for m, _ in rows:
        t = m.training
        resumed = f" (+ {len(t.resumes)} resume)" if getattr(t, "resumes", None) else ""
        print(f"| {m.name} | {t.steps} × {t.batch} | {t.images_seen:,} | "
              f"{t.wall_seconds / 60:.0f} min | {t.images_per_second:.0f} | "
              f"`{t.command}`{resumed} |")
    for m, r in rows:
        if "truncation" in r and "style_mixing" in r:
            t, s = r["truncation"], r["style_mixing"]
            print(f"\n{m.name}: class entropy psi=1 {t['class_entropy_psi_1']:.3f} bits, "
                  f"psi=0.5 {t['class_entropy_psi_0.5']:.3f} bits; style mixing over "
                  f"{s['pairs_with_different_classes']} seed pairs of different classes: "
                  f"coarse layers {s['coarse_layers']} carry the coarse source's class in "
                  f"{s['coarse_mix_follows_coarse_source']:.1%}, fine layers {s['fine_layers']} "
                  f"keep the base's class in {s['fine_mix_keeps_base_class']:.1%}.")


if __name__ == "__main__":
    main()
