"""Scenario models on disk: built once per (base config, generator source), then reused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from scenarios import tiny_model
from scenarios.errors import SlimError

MODEL_DIR = Path(__file__).parent / "models"
COMPLETE_MARKER = ".slim-complete"


def model_key(name: str) -> str:
    """Changes whenever the base config or the generator changes, so stale weights are never served."""
    config = MODEL_DIR / f"{name}.json"
    if not config.is_file():
        known = ", ".join(sorted(p.stem for p in MODEL_DIR.glob("*.json")))
        raise SlimError(f"unknown model {name!r}; known: {known}")
    source = b"".join(path.read_bytes() for path in tiny_model.GENERATOR_FILES)
    return hashlib.sha256(config.read_bytes() + source).hexdigest()[:12]


def materialize(name: str, cache: Path) -> Path:
    """The checkpoint folder for model `name` (tokenizer + config + safetensors), built if missing."""
    target = cache / f"{name}-{model_key(name)}"
    if (target / COMPLETE_MARKER).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        tiny_model.build_tokenizer(staging)
        tiny_model.write_checkpoint(staging, json.loads((MODEL_DIR / f"{name}.json").read_text()))
        (staging / COMPLETE_MARKER).write_text("")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# hf_quant_config.json: ModelOpt checkpoints only (the others have none, so their digests are unchanged).
MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors",
               "hf_quant_config.json")


def model_digest(model_dir: Path) -> str:
    """sha256 over the checkpoint's files: the same digest means the same weights and tokenizer."""
    digest = hashlib.sha256()
    for name in MODEL_FILES:
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode() + b"\0")
            with path.open("rb") as f:
                for block in iter(lambda f=f: f.read(1 << 24), b""):
                    digest.update(block)
    return digest.hexdigest()
