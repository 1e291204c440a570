"""The throughput gain implied by GPU-active time rising from 76% to 99%, against the stated "22% increase".

Checks: if the GPU work per decoding step stays the same, throughput is proportional to the fraction of
wall time the GPU is busy, so going from 76% to 99% active implies 99 / 76 ≈ 1.303, a 30.3% gain. That is
an upper bound: the paper's 22% is below it, which means the GPU work per step grew by about
1.303 / 1.22 ≈ 6.8% once scheduling overlapped it (contention, repair of speculated batches). A "diverged"
verdict here says the two published numbers are not related by the simple model, not that either is false.
Cannot check: the 76% and 99% measurements themselves, the 8B model at batch 64, latency variance.
Standalone: `python repro/async-batching-speedup/run.py` prints the working and then {"value": gain in %}.
"""

import json

BEFORE, AFTER = 76.0, 99.0  # percent of wall time the GPU is active, synchronous vs asynchronous scheduling


def implied_gain(before: float = BEFORE, after: float = AFTER) -> float:
    """Throughput gain in percent when only the GPU's idle time changes."""
    return 100 * (after / before - 1)


if __name__ == "__main__":
    gain = implied_gain()
    print(f"speed-up bound: {AFTER:g} / {BEFORE:g} = {AFTER / BEFORE:.3f}x, i.e. +{gain:.1f}% throughput")
    print(f"stated +22% implies GPU work per step grew by {100 * ((AFTER / BEFORE) / 1.22 - 1):.1f}%")
    print(json.dumps({"value": round(gain, 2), "ratio": round(AFTER / BEFORE, 4)}))
