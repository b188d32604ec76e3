"""Writes random-weight SAM 3 checkpoints in the layout of the hub's facebook/sam3.

The hub repository keys the tracker's weights `tracker_model.*` once, beside `detector_model.*` and
`tracker_neck.*`, and ships ONE processor_config.json that Sam3Processor, Sam3VideoProcessor,
Sam3TrackerProcessor and Sam3TrackerVideoProcessor all load. transformers 5.x `save_pretrained` of a
Sam3VideoModel writes `tracker_model.tracker_model.*` instead (its sam3_tracker key renaming runs in reverse
inside the tracker sub-module), a layout that Sam3TrackerModel.from_pretrained cannot read. So the weights
are written here straight from the module tree with safetensors, and the processor is a Sam3VideoProcessor
(image processor + video processor + tokenizer), which saves the sections every SAM 3 processor reads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_model
from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3VideoConfig, Sam3VideoModel, Sam3VideoProcessor
from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

MARKER_FILE = "SAM3_API_RANDOM_WEIGHTS.json"
# Bumped whenever the files written here change shape, so cached checkpoints are rebuilt.
LAYOUT_VERSION = 2
SAM3_MEAN_STD = [0.5, 0.5, 0.5]  # facebook/sam3 normalises to [-1, 1]


FIRING_QUERIES = 2  # detector queries a random checkpoint makes fire on every image and text
FIRING_LOGIT, QUIET_LOGIT = 5.0, -3.0


def make_detector_fire(model: Sam3VideoModel) -> None:
    """Give random weights a detector that finds a few objects, deterministically.

    With random weights every query scores about sigmoid(0) x sigmoid(0) = 0.25, below SAM 3's 0.5 detection
    threshold, so a text prompt would find nothing and a text-tracking test would pass with zero objects. The
    query score is (query_proj(h_q) . text_proj(t)) / sqrt(d), and h_q barely depends on the image with random
    weights. So: measure each query's projection once, point the text projection's bias at the first
    FIRING_QUERIES queries and shift every query down with the query projection's bias: those queries score
    sigmoid(5) on any image and text (a few objects found, the same every time), the others sigmoid(<= -3).
    The presence head is pushed to "present" and the tracker's object-score head to "visible", so objects
    found are tracked instead of being dropped as occluded.
    """
    detector = model.detector_model
    scoring = detector.dot_product_scoring
    with torch.no_grad():
        detector.detr_decoder.presence_head.layer3.bias.fill_(4.0)
        model.tracker_model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(4.0)
        projected = _projected_queries(detector)  # (num_queries, d)
        direction = projected[:FIRING_QUERIES].sum(0)
        direction = direction / direction.norm()
        along = projected @ direction
        chosen, others = along[:FIRING_QUERIES].min(), along[FIRING_QUERIES:].max()
        unit = (FIRING_LOGIT - QUIET_LOGIT) / (float(chosen - others) * scoring.scale)  # logit per unit `along`
        offset = float(chosen) - FIRING_LOGIT / (unit * scoring.scale)
        scoring.text_proj.bias.copy_(direction * unit)
        scoring.query_proj.bias.sub_(direction * offset)


def _projected_queries(detector) -> torch.Tensor:
    """query_proj of the last decoder layer's query states on a plain grey image and the empty prompt."""
    captured = {}

    def capture(module, args, kwargs):
        captured["queries"] = module.query_proj(kwargs["decoder_hidden_states"][-1, 0])

    size = detector.config.image_size
    handle = detector.dot_product_scoring.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        ids = torch.zeros((1, 32), dtype=torch.long)
        detector(pixel_values=torch.zeros((1, 3, size, size)), input_ids=ids, attention_mask=torch.ones_like(ids))
    finally:
        handle.remove()
    return captured["queries"]


def build_processor(image_size: int, tokenizer: CLIPTokenizer) -> Sam3VideoProcessor:
    """Image + video processors at the model's input size, and the CLIP tokenizer."""
    size = {"height": image_size, "width": image_size}
    image_processor = Sam3ImageProcessor(size=size)
    video_processor = Sam2VideoVideoProcessor(size=size, image_mean=SAM3_MEAN_STD, image_std=SAM3_MEAN_STD)
    return Sam3VideoProcessor(image_processor=image_processor, video_processor=video_processor, tokenizer=tokenizer)


def write_checkpoint(path: Path, config: Sam3VideoConfig, tokenizer: CLIPTokenizer, seed: int = 0,
                     device: str = "cpu") -> None:
    """Write config, hub-layout safetensors, processor and tokenizer files to `path` (atomically).

    `device` is where the random weights are drawn: on a GPU the full-size model initialises in seconds
    (bench/gpu_report.py); the values then differ from a CPU-built checkpoint of the same seed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        torch.manual_seed(seed)
        with torch.device(device):  # the factory functions in make_detector_fire follow too
            model = Sam3VideoModel(config).eval()
            make_detector_fire(model)
        config.save_pretrained(staging)
        # Keys as the module tree names them: tracker_model.*, detector_model.*, tracker_neck.* (the hub's).
        save_model(model, str(staging / "model.safetensors"), metadata={"format": "pt"})
        parameter_count = sum(p.numel() for p in model.parameters())
        del model
        build_processor(config.detector_config.image_size, tokenizer).save_pretrained(staging)
        marker = {"random_weights": True, "seed": seed, "parameters": parameter_count, "layout": LAYOUT_VERSION}
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2))
        _publish(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, path: Path) -> None:
    """Atomic rename: a concurrent builder either wins or finds the finished checkpoint."""
    if path.exists() and not is_current_checkpoint(path):
        shutil.rmtree(path, ignore_errors=True)  # an older layout: replace it
    try:
        os.replace(staging, path)
    except OSError:
        if not is_current_checkpoint(path):
            raise


def is_random_checkpoint(path: str | Path) -> bool:
    """True for checkpoints this module wrote: /health then says the masks mean nothing."""
    return (Path(path) / MARKER_FILE).exists()


def is_current_checkpoint(path: str | Path) -> bool:
    """A complete checkpoint written with the current layout."""
    marker = Path(path) / MARKER_FILE
    try:
        return json.loads(marker.read_text()).get("layout") == LAYOUT_VERSION
    except (OSError, ValueError):
        return False
