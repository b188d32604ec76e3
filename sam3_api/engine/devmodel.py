"""Builds random-weight SAM 3 checkpoints laid out like the hub's facebook/sam3.

`SAM3_MODEL=dev-tiny` generates (deterministically, on first use, then cached) a tiny Sam3VideoModel with
config.json, model.safetensors, processor and tokenizer files, so tests and the offline quick start load it
through exactly the same from_pretrained path as the real weights. Its masks mean nothing.

`write_checkpoint(path, full_size_config())` writes the full-size architecture with random weights, which
the full-size test and `bench/engine.py --full` use in place of the gated real weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3Processor, Sam3VideoConfig, Sam3VideoModel
from transformers.convert_slow_tokenizer import bytes_to_unicode

log = logging.getLogger(__name__)

DEV_IMAGE_SIZE = 112  # 8 x 8 patches of 14 px: the smallest grid the windowed ViT and FPN accept
DEV_SEED = 0
# A few BPE merges so common demo words become single tokens; the rest falls back to bytes.
_DEV_MERGES = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("c", "u"), ("cu", "p</w>")]
MARKER_FILE = "SAM3_API_RANDOM_WEIGHTS.json"


def dev_tokenizer() -> CLIPTokenizer:
    """A CLIP BPE tokenizer over bytes plus a few merges: real tokenization code, tiny vocabulary."""
    vocab: dict[str, int] = {}
    for char in bytes_to_unicode().values():
        vocab[char] = len(vocab)
    for char in bytes_to_unicode().values():
        vocab[char + "</w>"] = len(vocab)
    for left, right in _DEV_MERGES:
        vocab.setdefault(left + right, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=list(_DEV_MERGES))


def _tiny_vit(image_size: int) -> dict:
    return dict(
        model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, image_size=image_size, patch_size=14, window_size=4, global_attn_indexes=[1],
        pretrain_image_size=56,
    )


def dev_tiny_config(tokenizer: CLIPTokenizer) -> Sam3VideoConfig:
    """Every width and depth of SAM 3 shrunk to the minimum; the structure is unchanged."""
    size = DEV_IMAGE_SIZE
    grid = size // 14
    text = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, projection_dim=32, max_position_embeddings=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    small = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    detector = dict(
        vision_config=dict(
            backbone_config=_tiny_vit(size), fpn_hidden_size=32,
            backbone_feature_sizes=[[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]],
        ),
        text_config=text,
        geometry_encoder_config=dict(num_layers=1, **small),
        detr_encoder_config=dict(num_layers=1, **small),
        detr_decoder_config=dict(num_layers=1, num_queries=16, **small),
        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2),
    )
    tracker = dict(
        vision_config=dict(backbone_config=_tiny_vit(size), fpn_hidden_size=32),
        prompt_encoder_config=dict(hidden_size=32),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
        memory_attention_hidden_size=32, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
        memory_encoder_hidden_size=32, memory_encoder_output_channels=16, mask_downsampler_embed_dim=32,
        memory_fuser_embed_dim=32, memory_fuser_intermediate_dim=64, memory_fuser_num_layers=1, image_size=size,
    )
    return Sam3VideoConfig(detector_config=detector, tracker_config=tracker, low_res_mask_size=4 * grid)


def full_size_config() -> Sam3VideoConfig:
    """The released architecture (defaults of Sam3VideoConfig: ~860M parameters, 1008 px input)."""
    return Sam3VideoConfig()


def write_checkpoint(path: Path, config: Sam3VideoConfig, tokenizer: CLIPTokenizer, seed: int = DEV_SEED) -> None:
    """Write config, safetensors weights, processor and tokenizer files to `path` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        torch.manual_seed(seed)
        model = Sam3VideoModel(config).eval()
        model.save_pretrained(staging, safe_serialization=True)
        parameter_count = sum(p.numel() for p in model.parameters())
        del model
        size = config.detector_config.image_size
        image_processor = Sam3ImageProcessor(size={"height": size, "width": size})
        Sam3Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(staging)
        marker = {"random_weights": True, "seed": seed, "parameters": parameter_count}
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2))
        try:
            os.replace(staging, path)  # atomic: a concurrent builder either wins or finds it complete
        except OSError:
            if not (path / MARKER_FILE).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _dev_fingerprint() -> str:
    """Changes whenever the dev config or the installed transformers changes, so stale caches are rebuilt."""
    import transformers

    tokenizer = dev_tokenizer()
    blob = dev_tiny_config(tokenizer).to_json_string() + transformers.__version__ + str(DEV_SEED)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure_dev_checkpoint(cache_dir: Path) -> Path:
    """Return the dev-tiny checkpoint directory, building it first if it is not cached yet."""
    path = Path(cache_dir) / f"dev-tiny-{_dev_fingerprint()}"
    if not (path / MARKER_FILE).exists():
        log.info("building the dev-tiny checkpoint in %s (random weights, nothing downloaded)", path)
        tokenizer = dev_tokenizer()
        write_checkpoint(path, dev_tiny_config(tokenizer), tokenizer)
    return path


def ensure_full_size_checkpoint(cache_dir: Path) -> Path:
    """The released architecture with random weights in `cache_dir`/full-size-random, built once.

    Built in a child process: building holds a full copy of the weights (3.4 GB), which must neither sit
    beside a server's copy nor count in a benchmark's peak RSS.
    """
    path = Path(cache_dir) / "full-size-random"
    if not (path / MARKER_FILE).exists():
        log.info("building the full-size random checkpoint in %s (once; a few minutes)", path)
        build = ("from pathlib import Path; from sam3_api.engine.devmodel import *; "
                 f"write_checkpoint(Path({str(path)!r}), full_size_config(), dev_tokenizer())")
        subprocess.run([sys.executable, "-c", build], check=True, cwd=Path(__file__).resolve().parents[2])
    return path


def is_random_checkpoint(path: str | Path) -> bool:
    """True for checkpoints this module wrote: /health then says the masks mean nothing."""
    return (Path(path) / MARKER_FILE).exists()
