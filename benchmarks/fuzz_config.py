"""Fuzz the config.json import: mutated catalog configs and random JSON through parse_config_json, then
estimate() on every accepted model. Prints how many inputs ended as a model, as one K2CalcError line,
as another exception (a bug), or as an estimate that did not return within the time limit (a bug).

    python benchmarks/fuzz_config.py [N] [SEED]      # default 2000 inputs, seed 0
"""

from __future__ import annotations

import collections
import json
import math
import random
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from k2calc.errors import K2CalcError  # noqa: E402
from k2calc.estimate import estimate  # noqa: E402
from k2calc.models import parse_config_json  # noqa: E402
from k2calc.scenario import Catalogs, Scenario  # noqa: E402

BASES = [json.loads(p.read_text())["config"] for p in sorted((ROOT / "data" / "models").glob("*.json"))]
ODD_VALUES = [0, -1, -4096, 1, 2, 3, 10**30, 10**6, 1e308, 5e-324, 0.5, 7168.0, math.inf, -math.inf, math.nan,
              True, False, None, "", "big", "7168", [], [1], {}, {"a": 1}, "fp8", 2**63, -(2**63)]


def mutate(rng: random.Random) -> str:
    """One malformed (or valid) config.json text."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(['[' * 100000, '{"a":1}', '5', 'null', '"x"', '{}', '{"architectures": 5}'])
    if roll < 0.08:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).decode("latin-1")
    config = json.loads(json.dumps(rng.choice(BASES)))
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(config))
        if rng.random() < 0.15:
            config.pop(key)
        else:
            config[key] = rng.choice(ODD_VALUES) if rng.random() < 0.8 else rng.randint(-10, 10**7)
    return json.dumps(config)  # NaN/Infinity written as JSON's extension, as some exporters do


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def classify(text: str, seconds: float = 5.0) -> str:
    """'model' (accepted and estimated), 'error' (one K2CalcError), 'bug:<type>' or 'bug:timeout'."""
    try:
        model = parse_config_json(text, "fuzzed")
    except K2CalcError as exc:
        return "error" if "\n" not in str(exc) else "bug:multiline"
    except Exception as exc:  # noqa: BLE001 - the point is to count them
        return f"bug:{type(exc).__name__}"
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        estimate(Scenario(model=model.id), Catalogs(models={model.id: model})).as_dict()
    except K2CalcError:
        return "accepted, estimate error"
    except Timeout:
        return "bug:timeout"
    except Exception as exc:  # noqa: BLE001
        return f"bug:estimate {type(exc).__name__}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return "model"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    counts: collections.Counter[str] = collections.Counter()
    start = time.perf_counter()
    for _ in range(n):
        counts[classify(mutate(rng))] += 1
    bugs = sum(v for k, v in counts.items() if k.startswith("bug"))
    print(f"{n} inputs in {time.perf_counter() - start:.1f} s; bugs: {bugs}")
    for k, v in counts.most_common():
        print(f"  {k:32s} {v}")


if __name__ == "__main__":
    main()
