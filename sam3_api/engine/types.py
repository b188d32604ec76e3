"""Plain data passed in and out of the engine (numpy only, no torch), so api/ can import it freely."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PreparedImage:
    """A decoded RGB image plus the hash of its pixels: the embedding-cache key.

    Hash once, prompt many times: the WebSocket reuses one PreparedImage for every click.
    """

    pixels: np.ndarray  # (H, W, 3) uint8 RGB
    key: str

    @classmethod
    def from_array(cls, pixels: np.ndarray) -> "PreparedImage":
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB array, got shape {pixels.shape}")
        digest = hashlib.blake2b(digest_size=16)
        digest.update(str(pixels.shape).encode())
        digest.update(memoryview(pixels).cast("B"))
        return cls(pixels=pixels, key=digest.hexdigest())

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def nbytes(self) -> int:
        """Memory held by the pixels (lets a size-bounded LRU such as EmbeddingCache hold images)."""
        return int(self.pixels.nbytes)


@dataclass
class Segmentation:
    """Instances found for one prompt: masks at the original image size, sorted by score (best first)."""

    masks: np.ndarray  # (N, H, W) bool
    boxes: np.ndarray  # (N, 4) float32, xyxy in original image pixels
    scores: np.ndarray  # (N,) float32
    prompt: str | None = None
    # For prompts with several inputs (several boxes): which input produced each instance.
    prompt_indices: np.ndarray | None = None
    timing_ms: dict[str, float] = field(default_factory=dict)

    @property
    def num_masks(self) -> int:
        return int(self.masks.shape[0])

    @classmethod
    def empty(cls, height: int, width: int, prompt: str | None = None) -> "Segmentation":
        return cls(
            masks=np.zeros((0, height, width), dtype=bool),
            boxes=np.zeros((0, 4), dtype=np.float32),
            scores=np.zeros((0,), dtype=np.float32),
            prompt=prompt,
        )

    def subset(self, keep: np.ndarray) -> "Segmentation":
        """The instances where `keep` (a bool array or index array) selects them, in their order."""
        return Segmentation(
            masks=self.masks[keep],
            boxes=self.boxes[keep],
            scores=self.scores[keep],
            prompt=self.prompt,
            prompt_indices=None if self.prompt_indices is None else self.prompt_indices[keep],
            timing_ms=self.timing_ms,
        )

    def sorted_by_score(self, max_masks: int | None = None) -> "Segmentation":
        order = np.argsort(-self.scores, kind="stable")
        if max_masks is not None:
            order = order[:max_masks]
        return Segmentation(
            masks=self.masks[order],
            boxes=self.boxes[order],
            scores=self.scores[order],
            prompt=self.prompt,
            prompt_indices=None if self.prompt_indices is None else self.prompt_indices[order],
            timing_ms=self.timing_ms,
        )


@dataclass(frozen=True)
class Thresholds:
    """What a prompt's masks must pass; the defaults are serving's (serving/defaults.py), never the engine's."""

    mask: float  # probability above which a pixel is in a mask
    confidence: float  # score below which an instance is dropped


@dataclass(frozen=True)
class ConceptQuery:
    """A concept prompt on one image: each text (None: the exemplar boxes alone), validated."""

    texts: list[str | None]
    exemplar_boxes: list[list[float]] | None
    exemplar_labels: list[int] | None
    thresholds: Thresholds
    max_masks: int


@dataclass(frozen=True)
class TrackerQuery:
    """Boxes and/or points for the tracker's decoder, validated; `name` is the result's prompt."""

    points: list[list[list[float]]] | None  # per object
    labels: list[list[int]] | None
    boxes: list[list[float]] | None
    multimask: bool  # decode SAM's three candidates
    thresholds: Thresholds
    max_masks: int | None
    name: str  # "box" | "points"


@dataclass(frozen=True, kw_only=True)
class AutoParams:
    """Knobs of automatic "segment everything", with SAM's automatic mask generator defaults (its mask threshold
    has none here: serving/defaults.py decides it for every surface)."""

    points_per_side: int = 32
    points_per_batch: int | None = None  # None: 64 on CUDA; on CPU sized to a memory budget (automatic.default_batch)
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_mask_region_area: int = 0
    max_masks: int | None = None
    mask_threshold: float


@dataclass(frozen=True)
class EngineStatus:
    """What /health reports: the truth about the model, including why it is not ready."""

    state: str  # "loading" | "ready" | "failed"
    model: str
    device: str
    is_dev_model: bool
    error: str | None = None
    load_seconds: float | None = None
    attempts: int = 0  # load attempts so far (transient failures are retried with backoff)
    precision: str | None = None  # fp32 | bf16 once loaded
    precision_reason: str | None = None  # why (SAM3_PRECISION, or what auto found on this hardware)

    @property
    def ready(self) -> bool:
        return self.state == "ready"
