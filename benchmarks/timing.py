"""What the benchmarks share: the best rate of a few interleaved rounds (other work on the machine slows single
runs, never speeds them up)."""
from __future__ import annotations

import time


def best_rate(steps: dict, work: float, seconds: float, rounds: int) -> dict[str, float]:
    """Best `work` units per second of each `steps[key]()` over `rounds` interleaved rounds.

    Each round warms up with one call, then times calls for at least `seconds` and at least two calls.
    """
    best = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for key, step in steps.items():
            step()
            n, start = 0, time.perf_counter()
            while n < 2 or time.perf_counter() - start < seconds:
                step()
                n += 1
            best[key] = max(best[key], n * work / (time.perf_counter() - start))
    return best
