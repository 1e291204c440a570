"""An MFU calculator against "30–70% is the real-world range" (Model FLOPs Utilization from First Principles).

Checks: recomputes Model FLOPs Utilization for published large training runs from their published inputs:
PaLM 540B from first principles (6N + 12·L·H·Q·T FLOPs per token × 238.3K tokens/s over 6,144 TPU v4 chips
at 275 TFLOPS bf16 each; the paper states 46.2%), and Megatron-LM's 1T-parameter run (163 TFLOPS per A100)
and FlashAttention-2's GPT training (225 TFLOPS per A100) against the A100's 312 TFLOPS bf16 dense peak.
The value is the median of the recomputed figures; each one is printed with whether it is inside 30–70%.
Cannot check: that these runs are typical of "the real world" (they are tuned flagship runs, and
FlashAttention-2's 72% sits just above the range); Megatron-LM counts activation recomputation, which makes
its figure closer to hardware FLOPs utilization; nothing here measures a GPU.
Standalone: `python repro/mfu-range/run.py` prints the working and then {"value": median MFU in %}.
"""

import json
import statistics

A100_BF16_PEAK = 312e12  # dense bf16 FLOP/s, the figure the post uses
TPU_V4_PEAK = 275e12


def mfu(flops_per_token: float, tokens_per_s: float, n_chips: int, peak: float) -> float:
    """Achieved model FLOP/s over the hardware's peak, in percent."""
    return 100 * flops_per_token * tokens_per_s / (n_chips * peak)


def palm_flops_per_token(n_params=540.35e9, layers=118, heads=48, head_dim=256, seq=2048) -> float:
    """PaLM appendix B: 6N for the dense matmuls plus 12·L·H·Q·T for attention (forward and backward)."""
    return 6 * n_params + 12 * layers * heads * head_dim * seq


if __name__ == "__main__":
    runs = {
        "PaLM 540B (TPU v4)": mfu(palm_flops_per_token(), 238.3e3, 6144, TPU_V4_PEAK),
        "Megatron-LM 1T (A100)": 100 * 163e12 / A100_BF16_PEAK,
        "FlashAttention-2 GPT (A100)": 100 * 225e12 / A100_BF16_PEAK,
    }
    for name, value in runs.items():
        inside = "inside" if 30 <= value <= 70 else "outside"
        print(f"{name:30} MFU {value:5.1f}%  ({inside} 30-70%)")
    median = statistics.median(runs.values())
    print(f"median {median:.1f}%")
    print(json.dumps({"value": round(median, 2), "runs": {k: round(v, 2) for k, v in runs.items()}}))
