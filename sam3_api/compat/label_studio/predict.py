"""/predict: one prediction per task, in task order; pre-labels by label name, or the object at the editor's
clicks when Label Studio sends a context (interactive pre-annotation)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from ...config import Settings
from ...engine.engine import Sam3Engine
from ...engine.types import PreparedImage
from ...errors import InvalidImage, InvalidPrompt, ImageTooLarge, UrlFetchFailed, UrlNotAllowed
from . import render, segment
from .labeling import LabelingConfig
from .task_images import LabelStudioSource, load_image

log = logging.getLogger(__name__)
UNREADABLE = (InvalidImage, ImageTooLarge, UrlFetchFailed, UrlNotAllowed)


@dataclass(frozen=True)
class Clicks:
    """The editor's context: points in pixels (1 positive, 0 negative), an optional box, the label."""

    points: list[list[float]]
    labels: list[int]
    box: list[float] | None
    label: str


@dataclass
class PredictCall:
    engine: Sam3Engine
    settings: Settings
    config: LabelingConfig
    source: LabelStudioSource
    client: httpx.AsyncClient
    version: str

    async def tasks(self, tasks: list, context: list[dict] | None) -> list[dict]:
        """One prediction per task, in order. As in a batch job, the images of the next SAM3_BATCH_PREFETCH tasks
        are fetched and hashed while the model works; pre-labelling several tasks runs their images through the
        backbone SAM3_BATCH_BACKBONE_IMAGES at a time (segment.enter_batch_work), each image's labels share its
        backbone run, and the labels' text features are cached across tasks."""
        step = segment.enter_batch_work(self.engine, len(tasks), interactive=bool(context))
        loads: list[asyncio.Task | None] = []
        predictions = []
        try:
            for start in range(0, len(tasks), step):
                group = range(start, min(start + step, len(tasks)))
                while len(loads) < min(group.stop + self.settings.batch_prefetch, len(tasks)):
                    loads.append(asyncio.create_task(self._load(tasks[len(loads)], len(loads))))
                predictions += await self._group(loads, group, context)
            return predictions
        finally:
            for load in loads:
                if load is not None:
                    load.cancel()

    async def _group(self, loads: list[asyncio.Task | None], group: range, context: list[dict] | None) -> list[dict]:
        """The predictions of one backbone step's tasks."""
        loaded = []
        for index in group:
            loaded.append(await loads[index])
            loads[index] = None  # the finished load lets go of its pixels
        await segment.encode_together(self.engine, [image for images in loaded if images for image in images.values()])
        predictions = []
        for images in loaded:
            results = [] if images is None else await (
                self._interactive(images, context) if context else self._prelabel(images))
            predictions.append(render.prediction(results, self.version))
        return predictions

    async def _load(self, task: object, index: int) -> dict[str, PreparedImage] | None:
        """The task's images by data key; None (and a logged reason) when one cannot be read."""
        data = task.get("data") if isinstance(task, dict) else None
        try:
            return await self._images(data if isinstance(data, dict) else {})
        except UNREADABLE as exc:
            task_id = task.get("id", index) if isinstance(task, dict) else index
            log.warning("Label Studio task %s: empty prediction, its image could not be read: %s", task_id, exc.message)
            return None

    async def _images(self, data: dict) -> dict[str, PreparedImage]:
        keys = {control.data_key for control in self.config.controls}
        return {key: await segment.prepare(self.engine, await load_image(data.get(key), self.source, self.client,
                                                                          self.settings))
                for key in sorted(keys)}

    async def _prelabel(self, images: dict[str, PreparedImage]) -> list[dict]:
        results = []
        for control in self.config.prelabel_outputs():
            owners = [label for label, texts in control.prompts.items() for _ in texts]
            texts = [text for label_texts in control.prompts.values() for text in label_texts]
            found = await segment.concepts(self.engine, images[control.data_key], texts,
                                           self.settings.label_studio_threshold, self.settings.max_prompts)
            results.extend(await asyncio.to_thread(
                lambda c=control, f=found: [region for label, seg in zip(owners, f)
                                            for mask, box, score in zip(seg.masks, seg.boxes, seg.scores)
                                            for region in render.instance_results(c, label, mask, box, score)]))
        return results

    async def _interactive(self, images: dict[str, PreparedImage], context: list[dict]) -> list[dict]:
        image = images[self.config.controls[0].data_key]
        clicks = parse_clicks(context, image.width, image.height)
        control = self.config.mask_output_for(clicks.label) or self.config.outputs()[0]
        image = images[control.data_key]
        found = await segment.visual(self.engine, image, clicks.points, clicks.labels, clicks.box)
        return await asyncio.to_thread(lambda: [region for mask, box, score in zip(found.masks, found.boxes,
                                                                                     found.scores)
                                                for region in render.instance_results(control, clicks.label, mask,
                                                                                      box, score)])


def parse_clicks(context: list[dict], width: int, height: int) -> Clicks:
    """KeyPointLabels clicks (every one so far: they accumulate) and/or a RectangleLabels box, in pixels."""
    points, labels, box, label = [], [], None, None
    for item in context:
        kind = item.get("type") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if kind not in ("keypointlabels", "rectanglelabels") or not isinstance(value, dict):
            continue
        try:
            x, y = float(value["x"]) * width / 100, float(value["y"]) * height / 100
            if kind == "keypointlabels":
                points.append([x, y])
                labels.append(0 if item.get("is_positive") is False else 1)
            else:
                box = [x, y, x + float(value["width"]) * width / 100, y + float(value["height"]) * height / 100]
        except (KeyError, TypeError, ValueError):
            raise InvalidPrompt(f"context result {item.get('id')!r} needs numeric value.x and value.y (and width, "
                                "height for a rectangle), in percent of the image", field="context") from None
        names = value.get(kind)
        label = names[0] if isinstance(names, list) and names else label
    if not points and box is None:
        raise InvalidPrompt("the context has no keypointlabels click and no rectanglelabels box: add a "
                            "<KeyPointLabels smart=\"true\"> or <RectangleLabels smart=\"true\"> to the config",
                            field="context")
    return Clicks(points, labels, box, label or "object")
