"""MLA KV-cache ratio from DeepSeek-V2's published dimensions, against "576 floats ..., 57× less than standard MHA".

Checks: the arithmetic. MLA caches one compressed latent (d_c = 512) plus one decoupled rotary key
(d_R = 64) per token per layer = 576 values; standard multi-head attention of the same width (DeepSeek-V2:
128 heads of dimension 128) caches a key and a value per head = 2 × 128 × 128 = 32,768 values. The ratio
is 32,768 / 576 ≈ 56.9.
Cannot check: that a real model uses these dimensions, bytes rather than elements (both caches are assumed
to use the same dtype), the quality or the 5.76× speed-up claims, or grouped-query baselines (a GQA model
caches far less than MHA, so the ratio against it would be much smaller).
Standalone: `python repro/mla-kv-cache/run.py` prints the working and then {"value": ratio}.
"""

import json

D_LATENT, D_ROPE = 512, 64  # DeepSeek-V2: KV compression dimension d_c and decoupled RoPE key dimension d_h^R
N_HEADS, D_HEAD = 128, 128  # DeepSeek-V2: attention heads and per-head dimension


def mla_cache(d_latent: int = D_LATENT, d_rope: int = D_ROPE) -> int:
    return d_latent + d_rope


def mha_cache(n_heads: int = N_HEADS, d_head: int = D_HEAD) -> int:
    return 2 * n_heads * d_head  # a key and a value per head


if __name__ == "__main__":
    mla, mha = mla_cache(), mha_cache()
    print(f"MLA cache per token per layer: {D_LATENT} + {D_ROPE} = {mla} values")
    print(f"MHA cache per token per layer: 2 x {N_HEADS} x {D_HEAD} = {mha} values")
    print(f"ratio: {mha} / {mla} = {mha / mla:.2f}")
    print(json.dumps({"value": round(mha / mla, 3), "mla": mla, "mha": mha}))
