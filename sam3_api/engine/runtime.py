"""The loaded SAM 3 model and the three primitive operations every prompt kind is built from.

- encode():  the vision backbone, once per image -> detector features + tracker features (cached by caller)
- detect():  concept prompts (text and/or exemplar boxes) through the detector head
- decode():  points / boxes through the tracker's prompt encoder + mask decoder (interactive, SAM-style)

One Sam3VideoModel holds the detector and the tracker over ONE vision backbone; the tracker's features come
from that backbone through `tracker_neck` (Sam3VideoModel.get_vision_features_for_tracker), so no second ViT
is ever loaded. Every method here runs on the model thread only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from transformers import Sam3Processor, Sam3TrackerProcessor, Sam3VideoModel, Sam3VideoProcessor
from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

from .detections import Detections, instances
from .precision import Precision, cast_floats
from .prompts import fit_text

log = logging.getLogger(__name__)
TEXT_CACHE_ENTRIES = 256


@dataclass
class ImageEmbedding:
    """Backbone output for one image: what every later prompt on the same pixels reuses."""

    detector: Sam3VisionEncoderOutput  # FPN levels + position encodings for the detector head
    tracker: list[torch.Tensor]  # (1, C, H, W) per level, ready for the tracker's mask decoder
    original_size: tuple[int, int]  # (height, width)

    @property
    def nbytes(self) -> int:
        """Bytes owned by this image; the position encodings are shared by all images (see encode)."""
        tensors = [*self.detector.fpn_hidden_states, *self.tracker]
        return sum(t.numel() * t.element_size() for t in tensors)


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("SAM3_DEVICE=cuda but torch sees no CUDA device; use SAM3_DEVICE=auto or cpu")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def configure_torch(device: torch.device, num_threads: int | None) -> None:
    """TF32 on CUDA (bf16 autocast is applied per call); an explicit thread count on CPU."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    elif num_threads:
        torch.set_num_threads(num_threads)


def probability_to_logit(probability: float) -> float:
    """Mask thresholds are probabilities for clients; the tracker's decoder emits logits."""
    p = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


class Sam3Runtime:
    """A loaded checkpoint on one device. Not thread-safe by design: only the model thread calls it."""

    def __init__(self, model: Sam3VideoModel, processor: Sam3Processor, device: torch.device,
                 video_processor: Sam3VideoProcessor | None = None, precision: Precision | None = None):
        self.model = model.eval().to(device)
        self.precision = precision or Precision("fp32", "not asked for")
        self.precision.prepare_weights(self.model)
        self.processor = processor
        self.video_processor = video_processor  # frames -> model input, text prompts and results of video sessions
        self.tracker_processor = Sam3TrackerProcessor(image_processor=processor.image_processor)
        self.device = device
        self._text_cache: OrderedDict[str, object] = OrderedDict()
        self._position_encodings: tuple[torch.Tensor, ...] | None = None
        self._last_decoded: tuple[weakref.ref | None, list[torch.Tensor]] = (None, [])

    @classmethod
    def from_pretrained(cls, source: str, device: torch.device, token: str | None = None,
                        precision: Precision | None = None) -> "Sam3Runtime":
        """Load a sam3_video checkpoint (hub id or directory): weights (fp32), processor and tokenizer."""
        model = Sam3VideoModel.from_pretrained(source, token=token, dtype=torch.float32)
        processor = Sam3Processor.from_pretrained(source, token=token)
        video_processor = Sam3VideoProcessor.from_pretrained(source, token=token)
        return cls(model, processor, device, video_processor, precision)

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def weight_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    def _autocast(self):
        """Every model call runs inside this: bf16 autocast under SAM3_PRECISION's bf16, nothing under fp32."""
        return self.precision.autocast(self.device)

    def encode(self, pixels: np.ndarray) -> ImageEmbedding:
        """Run the vision backbone once and derive both heads' features from it."""
        return self.encode_many([pixels])[0]

    @torch.inference_mode()
    def encode_many(self, images: list[np.ndarray]) -> list[ImageEmbedding]:
        """The backbone over several images in one forward pass (a batch labeling step), one embedding each.

        Every image is resized to the same square input, so they stack; each image's features are sliced out
        of the batch and equal the single-image pass's (tests/unit/test_batch_backbone.py)."""
        images = [pixels if pixels.flags.writeable else pixels.copy() for pixels in images]  # torch warns on read-only
        # Say channels-last explicitly: for tiny images (1 x 3 x 3) the processor's guess can pick the wrong axis.
        inputs = self.processor.image_processor(images=images, return_tensors="pt", input_data_format="channels_last")
        pixel_values = inputs["pixel_values"].to(self.device)
        with self._autocast():
            vision = self.model.detector_model.get_vision_features(pixel_values=pixel_values)
            feature_maps, _ = self.model.get_vision_features_for_tracker(vision_embeds=vision)
        tracker = self.model.tracker_model
        feature_maps = list(feature_maps)  # (H*W, B, C) per level
        feature_maps[-1] = feature_maps[-1] + tracker.no_memory_embedding  # image mode: no video memory
        tracker_features = [level.permute(1, 2, 0).reshape(len(images), -1, *size)
                            for level, size in zip(feature_maps, tracker.backbone_feature_sizes)]
        # Keep only what the heads read; the ViT's last_hidden_state is large and no longer needed.
        # Cached in the compute dtype: under bf16 a cached image costs half the bytes of fp32.
        store = self.precision.store
        positions = self._shared_position_encodings(store(tuple(level[:1] for level in vision.fpn_position_encoding)))

        def own(level: torch.Tensor, index: int) -> torch.Tensor:  # a slice alone must not hold the batch's memory
            return level if len(images) == 1 else level[index : index + 1].clone()

        return [ImageEmbedding(
            detector=Sam3VisionEncoderOutput(fpn_hidden_states=store(tuple(own(level, i) for level in
                                                                           vision.fpn_hidden_states)),
                                             fpn_position_encoding=positions),
            tracker=store([own(level, i) for level in tracker_features]),
            original_size=pixels.shape[:2]) for i, pixels in enumerate(images)]

    def _shared_position_encodings(self, encodings: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The FPN's sine position encodings depend only on the (fixed) input size, not on the pixels: keep
        one copy for every cached image instead of ~110 MB more per image at full size."""
        if self._position_encodings is None or any(
            a.shape != b.shape or a.dtype != b.dtype for a, b in zip(self._position_encodings, encodings)
        ):
            self._position_encodings = tuple(encodings)
        return self._position_encodings

    def _text_features(self, text: str):
        cached = self._text_cache.get(text)
        if cached is not None:
            self._text_cache.move_to_end(text)
            return cached
        tokens = self.processor.tokenizer(text, padding="max_length", max_length=32, return_tensors="pt")
        tokens = {name: tensor.to(self.device) for name, tensor in tokens.items()}
        with self._autocast():
            features = self.model.detector_model.get_text_features(**tokens, return_dict=True)
        self._text_cache[text] = (features, tokens["attention_mask"])
        if len(self._text_cache) > TEXT_CACHE_ENTRIES:
            self._text_cache.popitem(last=False)
        return self._text_cache[text]

    @torch.inference_mode()
    def detect(
        self,
        embedding: ImageEmbedding,
        text: str | None,
        exemplar_boxes: list[list[float]] | None,
        exemplar_labels: list[int] | None,
        confidence_threshold: float,
        mask_threshold: float,
        limit: int | None = None,
    ) -> Detections:
        """Find the instances of a concept given by text, exemplar boxes (xyxy pixels), or both: every one
        above the confidence threshold, best first, at most `limit`."""
        height, width = embedding.original_size
        # Sam3Processor turns xyxy pixels into normalised cxcywh and substitutes "visual" for a missing text.
        text = fit_text(self.processor.tokenizer, text) if text else text
        prompt = self.processor(
            text=text,
            input_boxes=[exemplar_boxes] if exemplar_boxes else None,
            input_boxes_labels=[exemplar_labels] if exemplar_boxes else None,
            original_sizes=[[height, width]],
            return_tensors="pt",
        )
        text_features, attention_mask = self._text_features(text or "visual")
        boxes = prompt.get("input_boxes")
        labels = prompt.get("input_boxes_labels")
        vision, autocast = embedding.detector, self._autocast()
        if boxes is not None and self.precision.exemplar_boxes_need_fp32(self.device):
            vision, autocast = cast_floats(vision, torch.float32), contextlib.nullcontext()
            text_features = cast_floats(text_features, torch.float32)
        with autocast:
            outputs = self.model.detector_model(
                vision_embeds=vision,
                text_embeds=text_features,
                attention_mask=attention_mask,
                input_boxes=None if boxes is None else boxes.to(self.device),
                input_boxes_labels=None if labels is None else labels.to(self.device),
            )
        return instances(outputs, confidence_threshold, mask_threshold, (height, width), limit)

    @torch.inference_mode()
    def decode(
        self,
        embedding: ImageEmbedding,
        points: list[list[list[float]]] | None = None,
        labels: list[list[int]] | None = None,
        boxes: list[list[float]] | None = None,
        multimask: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tracker prompt decoder for a batch of objects (points (O, P, 2) and/or one box (O, 4) each).

        Returns low-resolution mask logits (O, K, h, w) and predicted IoU (O, K), K = 3 if multimask else 1.
        Coordinates are original image pixels; the tracker processor maps them to the model's input grid.
        """
        height, width = embedding.original_size
        prompt = self.tracker_processor(
            input_points=[points] if points is not None else None,
            input_labels=[labels] if labels is not None else None,
            input_boxes=[boxes] if boxes is not None else None,
            original_sizes=[[height, width]],
            return_tensors="pt",
        )
        tracker = self.model.tracker_model

        def on_device(name: str):
            value = prompt.get(name)
            return None if value is None else value.to(self.device)

        features = self._decoder_features(embedding)
        with self.precision.decoder_autocast(self.device):
            sparse, dense = tracker.prompt_encoder(
                input_points=on_device("input_points"),
                input_labels=on_device("input_labels"),
                input_boxes=on_device("input_boxes"),
                input_masks=None,
            )
            low_res_masks, iou_scores, _, _ = tracker.mask_decoder(
                image_embeddings=features[-1],
                image_positional_embeddings=tracker.get_image_wide_positional_embeddings(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
                high_resolution_features=features[:-1],
            )
        return low_res_masks[0].float(), iou_scores[0].float()

    def _decoder_features(self, embedding: ImageEmbedding) -> list[torch.Tensor]:
        """The fp32 features the prompt decoder reads, kept for the last image decoded: clicks come in runs on one
        image, and under bf16 each would otherwise cast its cached features again (2-5 ms of a ~90 ms click at
        full size on 2 CPU cores). One image's copy at most (21 MB at full size), dropped with its embedding
        (evicted from the cache, say)."""
        last, features = self._last_decoded
        if last is None or last() is not embedding:
            features = self.precision.decoder_features(embedding.tracker)
            self._last_decoded = (weakref.ref(embedding, self._forget_decoded), features)
        return features

    def _forget_decoded(self, dead: weakref.ref) -> None:
        if self._last_decoded[0] is dead:
            self._last_decoded = (None, [])

    @torch.inference_mode()
    def upscale(self, low_res_logits: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """Low-resolution logits (N, h, w) -> logits (N, H, W) at the original image size."""
        if low_res_logits.shape[0] == 0:
            return low_res_logits.new_zeros((0, *original_size))
        upscaled = self.tracker_processor.post_process_masks(
            [low_res_logits[None]], original_sizes=[list(original_size)], binarize=False
        )[0]
        return upscaled[0]
