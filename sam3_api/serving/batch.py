"""What a batch labeling job means: its categories, each image's prompts, and one image -> one result record.

A job asks every image the same thing, one of three ways:
* `texts`: each text is a category; every instance of each (concept prompts, as /segment/text);
* `auto`: segment everything, one category ("object"), as /segment/auto;
* `boxes` (a client's COCO detection file): each box of an image is one object (as /segment/box), and its
  mask keeps the box's category, so a box dataset becomes a mask dataset.
An image is segmented by serving.image.segment, never by engine calls picked here, so a job's masks equal the
single-image routes' for the same image and thresholds. The record is the line a job stores per image:
{"file_name", "width", "height", "error"?, "annotations": [{"category", "score", "box", "mask" (COCO RLE)}]}.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..engine.types import PreparedImage, Segmentation
from ..errors import InvalidPrompt, Sam3Error
from ..media.coco_boxes import CocoBoxes, normalise_file_name
from ..media.masks import mask_to_rle
from .image import ImagePrompts, auto_params, segment

AUTO_CATEGORY = "object"


@dataclass(frozen=True)
class BatchSpec:
    """A job's question, the same for every image; JSON-serialisable (it is kept in the job's manifest)."""

    mode: str  # "texts" | "auto" | "boxes"
    categories: list[str]
    boxes: dict[str, list[tuple[str, list[float]]]] = field(default_factory=dict)  # boxes mode, by file_name
    confidence_threshold: float | None = None
    mask_threshold: float | None = None
    max_masks: int | None = None
    min_area: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BatchSpec":
        boxes = {name: [(category, list(box)) for category, box in items] for name, items in data["boxes"].items()}
        return cls(**{**data, "boxes": boxes})


def batch_spec(*, texts: list[str] | None, mode: str | None, annotations: CocoBoxes | None,
               file_names: list[str] | tuple[str, ...], options: dict) -> BatchSpec:
    """The job's spec from exactly one prompt kind; boxes are matched to the job's images by file_name."""
    given = [name for name, value in (("texts", texts), ("mode", mode), ("annotations", annotations)) if value]
    if len(given) != 1:
        raise InvalidPrompt("give exactly one of texts (each text a category), mode \"auto\" (segment everything), "
                            f"or annotations (a COCO detection JSON whose boxes become masks); got {given or 'none'}",
                            field="prompts")
    if texts:
        categories = list(dict.fromkeys(" ".join(text.split()) for text in texts))  # as the engine cleans them
        if not all(categories):
            raise InvalidPrompt("texts must not be empty strings", field="texts")
        return BatchSpec("texts", categories, **options)
    if mode is not None:
        return BatchSpec("auto", [AUTO_CATEGORY], **options)
    by_name = {normalise_file_name(name): name for name in file_names}
    boxes = {by_name[key]: [(category, list(box)) for category, box in items]
             for name, items in annotations.boxes.items() if items and (key := normalise_file_name(name)) in by_name}
    if not boxes:
        raise InvalidPrompt("no image of the batch matches a file_name in annotations.images; name the images as "
                            f"in the batch, e.g. {file_names[0]!r}" if file_names else "the batch has no images",
                            field="annotations")
    return BatchSpec("boxes", list(annotations.categories), boxes, **options)


def image_prompts(spec: BatchSpec, file_name: str) -> ImagePrompts | None:
    """What this image is asked (None: a boxes job with no box on it, so no model work)."""
    common = {"confidence_threshold": spec.confidence_threshold, "mask_threshold": spec.mask_threshold,
              "max_masks": spec.max_masks}
    if spec.mode == "texts":
        return ImagePrompts(texts=list(spec.categories), **common)
    if spec.mode == "auto":
        return ImagePrompts(auto=auto_params(spec.mask_threshold, max_masks=spec.max_masks),
                            confidence_threshold=spec.confidence_threshold)
    boxes = spec.boxes.get(file_name)
    return ImagePrompts(boxes=[box for _, box in boxes], **common) if boxes else None


def needs_model(spec: BatchSpec, file_name: str) -> bool:
    """Whether the image is asked anything (a boxes job skips the images its annotations have no box on)."""
    return image_prompts(spec, file_name) is not None


async def segment_record(engine, spec: BatchSpec, file_name: str, image: np.ndarray | PreparedImage) -> dict:
    """One image's record: every instance found, best first, filtered by min_area and max_masks."""
    height, width = (image.height, image.width) if isinstance(image, PreparedImage) else image.shape[:2]
    prompts = image_prompts(spec, file_name)
    record = {"file_name": file_name, "width": int(width), "height": int(height), "annotations": []}
    if prompts is None:
        return record
    result = await segment(engine, image, prompts)
    record["annotations"] = annotations(result.segmentation, _categories_of(spec, file_name, result), spec)
    return record


def error_record(file_name: str, error: Sam3Error, width: int = 0, height: int = 0) -> dict:
    """The record of an image that failed (unreadable, too large, a refused URL): the job goes on."""
    return {"file_name": file_name, "width": width, "height": height, "error": error.message, "annotations": []}


def annotations(segmentation: Segmentation, categories: list[str], spec: BatchSpec) -> list[dict]:
    """The instances as record annotations (RLE masks), those under min_area dropped, at most max_masks."""
    out = []
    for index in range(segmentation.num_masks):
        mask = segmentation.masks[index]
        if spec.min_area and int(mask.sum()) < spec.min_area:
            continue
        out.append({"category": categories[index], "score": round(float(segmentation.scores[index]), 6),
                    "box": [round(float(v), 2) for v in segmentation.boxes[index]], "mask": mask_to_rle(mask)})
        if spec.max_masks is not None and len(out) >= spec.max_masks:
            break
    return out


def _categories_of(spec: BatchSpec, file_name: str, result) -> list[str]:
    """The category of each instance: the text it answers, the box it came from, or the one auto category."""
    count = result.segmentation.num_masks
    if spec.mode == "texts":
        return result.mask_prompts if result.mask_prompts is not None else [spec.categories[0]] * count
    if spec.mode == "auto":
        return [AUTO_CATEGORY] * count
    boxes = spec.boxes[file_name]
    indices = result.segmentation.prompt_indices
    return [boxes[int(i)][0] for i in (indices if indices is not None else range(count))]
