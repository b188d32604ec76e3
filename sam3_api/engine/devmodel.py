"""Random-weight SAM 3 checkpoints for development, tests and benchmarks (written by checkpoint.py).

`SAM3_MODEL=dev-tiny` generates (deterministically, on first use, then cached) a tiny Sam3VideoModel with
config.json, model.safetensors, processor and tokenizer files laid out like the hub's facebook/sam3, so tests
and the offline quick start load it through exactly the same from_pretrained path as the real weights. Its
masks mean nothing, but every path runs for real: its detector finds objects (checkpoint.make_detector_fire)
and its tracker's memory attention runs (the widths below satisfy the tracker's fixed 64-channel memory).

`ensure_full_size_checkpoint` writes the released architecture with random weights, which the full-size
tests and `bench/* --full` use in place of the gated real weights.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

from transformers import CLIPTokenizer, Sam3VideoConfig
from transformers.convert_slow_tokenizer import bytes_to_unicode

from .checkpoint import LAYOUT_VERSION, MARKER_FILE, is_current_checkpoint, is_random_checkpoint, write_checkpoint

__all__ = ["MARKER_FILE", "dev_tiny_config", "dev_tokenizer", "ensure_dev_checkpoint", "ensure_full_size_checkpoint",
           "full_size_config", "is_random_checkpoint", "write_checkpoint"]

log = logging.getLogger(__name__)

DEV_IMAGE_SIZE = 112  # 8 x 8 patches of 14 px: the smallest grid the windowed ViT and FPN accept
DEV_SEED = 0
# The tracker's memory attention reads memories through a fixed 64-channel projection (kv_in_dim=64), and splits
# each object pointer (FPN width) into 64-channel memory tokens: a width of exactly 64 leaves the pointers
# unsplit and misshapen in transformers 5.x, so the FPN (whose width the tracker neck shares) is 128 wide.
DEV_WIDTH = 128
MEMORY_CHANNELS = 64
# A few BPE merges so common demo words become single tokens; the rest falls back to bytes.
_DEV_MERGES = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("c", "u"), ("cu", "p</w>")]


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


def _tiny_detector(tokenizer: CLIPTokenizer, size: int, grid: int) -> dict:
    width = dict(hidden_size=DEV_WIDTH, num_attention_heads=2, intermediate_size=2 * DEV_WIDTH)
    text = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, projection_dim=DEV_WIDTH, max_position_embeddings=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return dict(
        vision_config=dict(
            backbone_config=_tiny_vit(size), fpn_hidden_size=DEV_WIDTH,
            backbone_feature_sizes=[[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]],
        ),
        text_config=text,
        geometry_encoder_config=dict(num_layers=1, **width),
        detr_encoder_config=dict(num_layers=1, **width),
        detr_decoder_config=dict(num_layers=1, num_queries=16, **width),
        mask_decoder_config=dict(hidden_size=DEV_WIDTH, num_attention_heads=2),
    )


def _tiny_tracker(size: int, grid: int) -> dict:
    return dict(
        vision_config=dict(backbone_config=_tiny_vit(size), fpn_hidden_size=DEV_WIDTH,
                           backbone_feature_sizes=[[4 * grid, 4 * grid], [2 * grid, 2 * grid], [grid, grid]]),
        prompt_encoder_config=dict(hidden_size=DEV_WIDTH, image_size=size, patch_size=14),
        mask_decoder_config=dict(hidden_size=DEV_WIDTH, mlp_dim=2 * DEV_WIDTH, num_attention_heads=2,
                                 iou_head_hidden_dim=DEV_WIDTH),
        memory_attention_hidden_size=DEV_WIDTH, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=2 * DEV_WIDTH, memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=DEV_WIDTH, memory_encoder_output_channels=MEMORY_CHANNELS, mask_downsampler_embed_dim=DEV_WIDTH,
        memory_fuser_embed_dim=DEV_WIDTH, memory_fuser_intermediate_dim=2 * DEV_WIDTH, memory_fuser_num_layers=1,
        image_size=size,
    )


def dev_tiny_config(tokenizer: CLIPTokenizer) -> Sam3VideoConfig:
    """Every width and depth of SAM 3 shrunk to the minimum that still runs every path; structure unchanged."""
    size, grid = DEV_IMAGE_SIZE, DEV_IMAGE_SIZE // 14
    # Random masks never agree with random tracks, so SAM 3's hot-start heuristics would drop every object it
    # finds and find new ones on every frame. No hot start and at most 4 objects: a text prompt finds its
    # objects on the first frame and tracks the same ids to the end, which is what tests need to see.
    return Sam3VideoConfig(detector_config=_tiny_detector(tokenizer, size, grid),
                           tracker_config=_tiny_tracker(size, grid), low_res_mask_size=4 * grid,
                           hotstart_delay=0, max_num_objects=4)


def full_size_config() -> Sam3VideoConfig:
    """The released architecture (defaults of Sam3VideoConfig: ~860M parameters, 1008 px input)."""
    return Sam3VideoConfig()


def _dev_fingerprint() -> str:
    """Changes whenever the dev config, the layout or the installed transformers changes: stale caches rebuild."""
    import transformers

    tokenizer = dev_tokenizer()
    blob = dev_tiny_config(tokenizer).to_json_string() + transformers.__version__ + f"{DEV_SEED}/{LAYOUT_VERSION}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure_dev_checkpoint(cache_dir: Path) -> Path:
    """Return the dev-tiny checkpoint directory, building it first if it is not cached yet."""
    path = Path(cache_dir) / f"dev-tiny-{_dev_fingerprint()}"
    if not is_current_checkpoint(path):
        log.info("building the dev-tiny checkpoint in %s (random weights, nothing downloaded)", path)
        tokenizer = dev_tokenizer()
        write_checkpoint(path, dev_tiny_config(tokenizer), tokenizer, seed=DEV_SEED)
    return path


def ensure_full_size_checkpoint(cache_dir: Path) -> Path:
    """The released architecture with random weights in `cache_dir`/full-size-random, built once.

    Built in a child process: building holds a full copy of the weights (3.4 GB), which must neither sit
    beside a server's copy nor count in a benchmark's peak RSS.
    """
    path = Path(cache_dir) / "full-size-random"
    if not is_current_checkpoint(path):
        log.info("building the full-size random checkpoint in %s (once; a few minutes)", path)
        build = ("from pathlib import Path; from sam3_api.engine.devmodel import *; "
                 f"write_checkpoint(Path({str(path)!r}), full_size_config(), dev_tokenizer())")
        subprocess.run([sys.executable, "-c", build], check=True, cwd=Path(__file__).resolve().parents[2])
    return path
