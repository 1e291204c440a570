"""Deterministic synthetic ~200-word abstracts for the embedding and clustering benchmarks."""

from __future__ import annotations

import random

_SUBJECTS = [
    "speculative decoding",
    "the key-value cache",
    "4-bit quantization",
    "LoRA adapters",
    "sparse autoencoders",
    "knowledge distillation",
    "masked diffusion language models",
    "mixture-of-experts routing",
    "long-context attention",
    "reinforcement learning from verifiable rewards",
    "LLM-as-a-judge evaluation",
    "continuous batching",
    "jailbreak robustness",
    "vision-language models",
    "FP8 training",
    "retrieval-augmented generation",
    "tool-using agents",
]
_VERBS = [
    "improves",
    "reduces",
    "stabilises",
    "accelerates",
    "explains",
    "compresses",
    "scales",
    "measures",
    "replaces",
]
_OBJECTS = [
    "latency",
    "memory traffic",
    "throughput",
    "accuracy on reasoning benchmarks",
    "training cost",
    "token efficiency",
    "acceptance length",
    "calibration",
    "the gap to the teacher",
    "robustness under distribution shift",
]
_FILLER = [
    "we",
    "propose",
    "a",
    "simple",
    "method",
    "that",
    "outperforms",
    "strong",
    "baselines",
    "across",
    "model",
    "sizes",
    "and",
    "datasets",
    "while",
    "keeping",
    "the",
    "implementation",
    "small",
    "and",
    "easy",
    "to",
    "reproduce",
    "on",
    "commodity",
    "hardware",
    "with",
    "open",
    "weights",
    "and",
    "released",
    "code",
]


def abstracts(n: int, words: int = 200, seed: int = 0) -> list[str]:
    """n texts: a title line, then about ``words`` words of abstract-like prose."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        subject = rng.choice(_SUBJECTS)
        title = f"{rng.choice(_VERBS).capitalize()} {rng.choice(_OBJECTS)} with {subject}"
        body: list[str] = []
        while len(body) < words:
            s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} by {rng.randint(2, 60)}%,"
            body.extend(s.split())
            body.extend(rng.sample(_FILLER, rng.randint(6, 14)))
        out.append(title + "\n" + " ".join(body[:words]) + ".")
    return out
