"""`validate --holdout FILE`: runs the calibration never saw, predicted exactly as validate predicts its own."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from k2calc import validate
from k2calc.cli import main

DATA = Path(__file__).parent.parent / "data"


def test_a_holdout_row_is_predicted_as_validate_predicts_it(tmp_path, capsys):
    rows = list(csv.DictReader((DATA / "measurements.csv").open(encoding="utf-8")))
    known = {r.measurement.id: r for r in validate.rows()}
    picked = [r for r in rows if r["id"] in known][:3]
    path = tmp_path / "holdout.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(picked)
    assert main(["validate", "--holdout", str(path)]) == 0
    out = capsys.readouterr().out
    for r in picked:
        line = next(x for x in out.splitlines() if x.startswith(r["id"]))
        assert f"{known[r['id']].predicted:10.2f}" in line
    assert f"holdout ({path}, 3 rows, calibration not refitted)" in out


def test_the_committed_holdout_file_is_read_whole(capsys):
    """Every speed row of the committed holdout file is either predicted or named with its reason."""
    path = DATA / "holdout" / "2026-12-02.csv"
    assert main(["validate", "--holdout", str(path)]) == 0
    out = capsys.readouterr().out
    with path.open(encoding="utf-8") as fh:
        speed_ids = [r["id"] for r in csv.DictReader(fh) if r["metric"] in validate.SPEED_METRICS]
    predicted = {line.split()[0] for line in out.splitlines()[1:] if line.startswith("d-")}
    skipped = out.split("Not compared: ", 1)[1].split("\n", 1)[0]
    assert all(i in predicted or f"{i} (" in skipped for i in speed_ids)
    assert re.search(rf"holdout \({re.escape(str(path))}, {len(predicted)} rows", out)


def test_an_aggregate_prefill_of_many_prompts_costs_what_each_prompt_costs():
    """llama-batched-bench's S_PP: 32 prompts of 4,096 tokens prefilled together. Each prompt attends over
    its own 4,096 tokens, so the aggregate rate is about one 4,096-token prompt's rate (more rows per
    expert GEMM: a little faster), not that of one 131,072-token prompt (quadratic attention over all of
    them, which predicted it 19x too slow)."""
    from k2calc.measurements import load_measurements

    ms = {m.id: m for m in load_measurements(DATA / "holdout" / "2026-12-02.csv")}
    many = ms["d-q3coder30b-spark-llamacpp-batched-p4096-b32-pp"]
    s = validate.comparable_scenario(many)
    aggregate, _ = validate.predict(many, s)
    one = validate.predict(many, s.model_copy(update={"concurrency": 1}))[0]
    assert s.concurrency == 32 and s.input_tokens == 4096
    assert 0.9 * one <= aggregate <= 2.0 * one


def test_a_burst_keeps_the_other_prompts_prefill_in_a_serving_engines_decode():
    """Prompts sent together: llama-batched-bench prefills them all before the first decode step, so its
    decode carries no prefill; SGLang schedules them in chunks between the running requests' steps, so
    its TPOT still carries them (4,096 MiniMax M2.7 prompts on 8x MI300X: 2.32 tok/s measured, 7.45
    predicted without them, 1.9 with them)."""
    from k2calc.measurements import load_measurements

    ms = {m.id: m for m in load_measurements()}
    for mid, prefill_first in (("b-mm27-mi300x8-sglang-c4096-tpot", False),
                               ("a-goss20-spark-llamacpp-batched-p4096-b16", True)):
        burst = ms[mid]
        steady = burst.model_copy(update={"arrival": "steady"})
        s = validate.comparable_scenario(burst)
        b, st = validate.predict(burst, s)[0], validate.predict(steady, s)[0]
        assert burst.arrival == "burst"
        assert (b > 1.01 * st) if prefill_first else (b == st), mid
