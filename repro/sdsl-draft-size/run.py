"""SDSL's optimal-draft-size rule against its own "roughly 200× smaller than the target" statement.

Checks: evaluates the published closed form N* = 2.71e-3 · M + 87M over targets "in the tens of billions of
parameters" (10B to 100B) and reports the target/draft ratio M / N* at the geometric middle of that span
(M ≈ 31.6B); the whole span is printed too (about 88× at 10B up to about 279× at 100B; the limit for very
large M is 1 / 2.71e-3 ≈ 369×). The hook registers a 25% tolerance because the claim says "roughly".
Cannot check: the fit itself (the affine acceptance-rate law, R² = 0.98 over 54 pairs), the scaling-law
inputs, or that drafts picked by the rule are within 4% of the best measured throughput.
Standalone: `python repro/sdsl-draft-size/run.py` prints the working and then {"value": ratio}.
"""

import json
import math

SLOPE, INTERCEPT = 2.71e-3, 87e6  # N* = SLOPE * M + INTERCEPT (parameters)


def optimal_draft(m: float) -> float:
    return SLOPE * m + INTERCEPT


def ratio(m: float) -> float:
    return m / optimal_draft(m)


if __name__ == "__main__":
    for billions in (10, 20, 30, 50, 70, 100):
        m = billions * 1e9
        print(f"M = {billions:>3}B  N* = {optimal_draft(m) / 1e6:7.1f}M  M/N* = {ratio(m):6.1f}x")
    mid = math.sqrt(10e9 * 100e9)
    print(f"geometric middle of 10B..100B: M = {mid / 1e9:.1f}B -> {ratio(mid):.1f}x; limit 1/slope = {1 / SLOPE:.0f}x")
    print(json.dumps({"value": round(ratio(mid), 2), "span": [round(ratio(10e9), 1), round(ratio(100e9), 1)]}))
