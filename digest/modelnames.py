"""Model names in running text ("Qwen3-8B", "Llama 3.1 70B", "Foo-7B-Instruct"): shared by the claims extractor
and the headline phrase, which a site build uses without importing digest.claims."""

from __future__ import annotations

import re

MODEL_FAMILY = (
    r"(?:Qwen|Llama|LLaMA|Gemma|Mistral|Mixtral|GPT|DeepSeek|Claude|Phi|OPT|Falcon|Gemini|BERT|RoBERTa|T5|ViT|"
    r"Pythia|OLMo|Yi|InternLM|Baichuan|Grok|Nemotron|Command|Jamba|Mamba|SmolLM|Granite|StableLM|o\d)"
)
MODEL_RE = re.compile(
    rf"(?<![\w-])(?:{MODEL_FAMILY}[\w.]*(?:[- ][\w.]*\d[\w.]*)?(?:-[\w.]*[A-Za-z][\w.]*)*"  # Qwen3-8B, Llama 3.1 70B
    r"|[A-Z][\w.]*-\d+(?:\.\d+)?[BM]\b(?:-[\w.]+)*)"  # Foo-7B-Instruct
)
