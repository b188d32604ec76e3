"""transformers' documented video pipelines, run on a checkpoint directory: the references parity tests use.

- picked objects: a standalone Sam3TrackerVideoModel.from_pretrained(<dir>) with its processor, the whole
  clip preprocessed by init_video_session(video=...), add_inputs_to_inference_session + model(frame_idx) per
  prompt, then propagate_in_video_iterator backward and/or forward from the first prompted frame (the first
  result for a frame wins, as in our runs);
- text: Sam3VideoModel + Sam3VideoProcessor (init_video_session, add_text_prompt, propagate_in_video_iterator,
  postprocess_outputs).
Results: {frame: {object_id: bool mask (H, W)}}. `precision` bf16 runs the model under bf16 autocast, with the
engine's bf16 ViT rotation (conftest.reference_model), and post-processes in fp32, as the engine does.
"""

from __future__ import annotations

import numpy as np
import torch
from pycocotools import mask as coco_mask
from sam3_api.engine.precision import cast_floats
from tests.conftest import reference_model
from transformers import Sam3TrackerVideoModel, Sam3TrackerVideoProcessor, Sam3VideoModel, Sam3VideoProcessor


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def reference_objects(checkpoint, frames: list[np.ndarray], prompts, direction: str = "both", precision="fp32"):
    model = reference_model(Sam3TrackerVideoModel, checkpoint, precision)
    processor = Sam3TrackerVideoProcessor.from_pretrained(str(checkpoint))
    session = processor.init_video_session(video=frames, inference_device="cpu")
    height, width = frames[0].shape[:2]
    for prompt in prompts:
        processor.add_inputs_to_inference_session(
            session, frame_idx=prompt.frame, obj_ids=prompt.object_id,
            input_points=None if prompt.points is None else [[prompt.points]],
            input_labels=None if prompt.labels is None else [[prompt.labels]],
            input_boxes=None if prompt.box is None else [[prompt.box]])
        with torch.inference_mode(), _autocast(precision):
            model(inference_session=session, frame_idx=prompt.frame)
    first, last = min(p.frame for p in prompts), max(p.frame for p in prompts)
    passes = {"both": [(first, True), (first, False)], "forward": [(first, False)], "backward": [(last, True)]}
    results = {}
    for start, reverse in passes[direction]:
        with _autocast(precision):
            outputs = list(model.propagate_in_video_iterator(session, start_frame_idx=start, reverse=reverse))
        for output in outputs:  # a tracker output depends on nothing but the session: safe to post-process after
            masks = processor.post_process_masks([output.pred_masks.float()], original_sizes=[[height, width]])[0][:, 0]
            results.setdefault(output.frame_idx, {oid: masks[i].numpy().astype(bool)
                                                  for i, oid in enumerate(output.object_ids)})
    return results


def reference_concepts(checkpoint, frames: list[np.ndarray], texts: list[str], precision: str = "fp32"):
    model = reference_model(Sam3VideoModel, checkpoint, precision)
    processor = Sam3VideoProcessor.from_pretrained(str(checkpoint))
    session = processor.init_video_session(video=frames, inference_device="cpu")
    processor.add_text_prompt(session, texts)
    results = {}
    with _autocast(precision):  # post-processing reads the session as it is at that frame: inside the loop
        for output in model.propagate_in_video_iterator(session):
            found = processor.postprocess_outputs(session, cast_floats(output, torch.float32))
            results[output.frame_idx] = {int(i): m.numpy() for i, m in zip(found["object_ids"], found["masks"])}
    return results


def decoded(results) -> dict[int, dict[int, np.ndarray]]:
    """Our FrameResults (RLE masks) as {frame: {object_id: bool mask}}."""
    out = {}
    for result in results:
        out[result.frame] = {o.object_id: coco_mask.decode({"size": o.mask["size"],
                                                            "counts": o.mask["counts"].encode()}).astype(bool)
                             for o in result.objects}
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def moving_square_frames(count: int, height: int = 120, width: int = 160, seed: int = 0) -> list[np.ndarray]:
    """A bright square moving right over a fixed textured background: something a tracker can follow."""
    background = (np.random.default_rng(seed).random((height, width, 3)) * 80).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        x = 10 + (i * 3) % max(width - 60, 1)
        frame[height // 3: height // 3 + 40, x: x + 40] = (230, 200, 40)
        frames.append(frame)
    return frames
