"""Fit the speed model's calibration parameters on published measurements (a developer's tool).

    python tools/fit_calibration.py [--measurements extra.csv ...] [--write]

Each parameter is set by a one-dimensional search (log scale, within physical bounds) that minimises
the mean |log2(measured / predicted)| over the rows of the classes it governs, a few rounds over all
parameters. It prints each parameter's old and new value and the rows it rests on; with --write it stores
them in data/platforms.csv and data/kernel_efficiency.csv. Bandwidths are not fitted: they come from
microbenchmarks (data/bandwidth.csv).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from k2calc import validate  # noqa: E402
from k2calc.measurements import load_measurements  # noqa: E402
from k2calc.performance import calibration as cal  # noqa: E402
from k2calc.performance import decode  # noqa: E402


def _loss(rows) -> float:
    return sum(abs(math.log2(r.ratio)) for r in rows) / max(1, len(rows))


def _rows(ms, kinds=None, platform=None, family=None):
    out = []
    for m in ms:
        try:
            s = validate.comparable_scenario(m)
            value, roof = validate.predict(m, s)
            row = validate.Row(m, s, value, roof, validate.calibration_class(validate.resolve(s)))
        except Exception:  # noqa: BLE001 - rows that do not map are skipped, as validate does
            continue
        if kinds and row.kind not in kinds:
            continue
        if platform and platform not in row.klass:
            continue
        if family and not row.klass.startswith(family):
            continue
        out.append(row)
    return out


def _search(get, set_, evaluate, low, high, steps=14):
    """Golden-section-like grid refinement of one parameter on a log scale."""
    best_v, best_l = get(), evaluate()
    lo, hi = math.log(low), math.log(high)
    for _ in range(3):
        grid = [math.exp(lo + (hi - lo) * i / (steps - 1)) for i in range(steps)]
        for v in grid:
            set_(v)
            loss = evaluate()
            if loss < best_l - 1e-9:
                best_v, best_l = v, loss
        width = (hi - lo) / (steps - 1) * 2
        lo, hi = max(math.log(low), math.log(best_v) - width), min(math.log(high), math.log(best_v) + width)
    set_(best_v)
    return best_v, best_l


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--measurements", nargs="*", default=[])
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="", help="fit only the parameters whose name starts with this")
    args = ap.parse_args()
    ms = [m for m in load_measurements() if m.metric in validate.SPEED_METRICS]
    for extra in args.measurements:
        ms += [m for m in load_measurements(Path(extra)) if m.metric in validate.SPEED_METRICS]
    plats = cal.platforms()
    effs = cal._efficiencies()
    params = []
    for name in plats:
        for field, kind in (("layer_latency_mla_s", "decode"), ("layer_latency_gqa_s", "decode")):
            def get(name=name, field=field):
                return getattr(plats[name], field)

            def set_(v, name=name, field=field):
                plats[name] = plats[name].model_copy(update={field: v})
            params.append((f"{name}.{field}", get, set_, 10e-6, 1e-3, dict(kinds={"decode"}, platform=name, family="server")))
    for key in list(effs):
        phase, kernel, platform = key
        if phase == "decode" and kernel != "*":
            kw = dict(kinds={"decode"}, platform=platform, family="server")
        elif phase == "prefill" and platform != "*":
            kw = dict(kinds={"prefill/ttft"}, platform=platform, family=kernel.split(":")[0])
        else:
            continue

        def get(key=key):
            return effs[key]

        def set_(v, key=key):
            effs[key] = v
        params.append((f"{phase}.{kernel}.{platform}", get, set_, 1e-3 if phase == "decode" else 1e-2, 1.0, kw))
    params.append(("CPU_DECODE_STREAM_SHARE", lambda: decode.CPU_DECODE_STREAM_SHARE,
                   lambda v: setattr(decode, "CPU_DECODE_STREAM_SHARE", v), 0.2, 1.0, dict(kinds={"decode"}, platform="cpu")))
    for rnd in range(args.rounds):
        for name, get, set_, low, high, kw in params:
            if not name.startswith(args.only):
                continue
            rows = _rows(ms, **kw)
            if not rows:
                continue
            ids = {r.measurement.id for r in rows}
            sub = [m for m in ms if m.id in ids]
            old = get()
            before = _loss(rows)
            new, after = _search(get, set_, lambda: _loss(_rows(sub, **kw)), low, high)
            print(f"round {rnd}: {name:45s} {old:.4g} -> {new:.4g}  mean|log2| {before:.3f} -> {after:.3f}  ({len(rows)} rows)")
    if args.write:
        _write(plats, effs)


def _write(plats, effs) -> None:
    path = cal.PLATFORMS_PATH
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        p = plats[r["platform"]]
        r["layer_latency_mla_s"] = f"{p.layer_latency_mla_s:.3g}"
        r["layer_latency_gqa_s"] = f"{p.layer_latency_gqa_s:.3g}"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    path = cal.KERNEL_EFFICIENCY_PATH
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        r["efficiency"] = f"{effs[(r['phase'], r['kernel'], r['platform'])]:.3g}"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
