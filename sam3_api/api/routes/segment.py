"""POST /segment/{text,box,points,auto} in three input modes: upload, /base64 and /url.

Each prompt kind is one parameter model and one runner; `_register` mounts the three input modes of a kind
so the twelve routes share every line of parsing and encoding. (No `from __future__ import annotations`
here: FastAPI must see the real parameter types of the routes built in `_register`.)
"""

from typing import Annotated, Awaitable, Callable

import numpy as np
from fastapi import APIRouter, Body, File, Form, UploadFile
from pydantic import create_model

from ...engine.engine import Sam3Engine
from ...engine.types import AutoParams
from ...errors import InvalidPrompt
from ..deps import EngineDep, SettingsDep
from ..encoding import merge, respond
from ..examples import base64_example, url_example
from ..inputs import image_from_base64, image_from_upload, image_from_url
from ..schemas import (
    AutoParamsModel, Base64Image, BoxParams, ErrorResponse, PointParams, SegmentResponse, TextParams, UrlImage,
)

router = APIRouter(tags=["segmentation"])
Runner = Callable[[Sam3Engine, np.ndarray, object], Awaitable[object]]
ERRORS = {code: {"model": ErrorResponse} for code in (400, 413, 422, 503)}
VISUALIZATION = {"content": {"image/png": {}}, "description": "JSON, or a PNG overlay with return_visualization"}


async def run_text(engine: Sam3Engine, pixels: np.ndarray, params: TextParams):
    texts = params.texts or ([params.text] if params.text else [])
    if not texts and params.exemplar_boxes:
        texts = [None]  # exemplar boxes alone: "find everything like these"
    if not texts:
        raise InvalidPrompt("text is required: describe the objects to find, e.g. text=person", field="text")
    confidence = 0.5 if params.confidence_threshold is None else params.confidence_threshold
    results = await engine.segment_text(
        pixels, texts, exemplar_boxes=params.exemplar_boxes, exemplar_labels=params.exemplar_labels,
        confidence_threshold=confidence, mask_threshold=params.mask_threshold, max_masks=params.max_masks,
    )
    merged, mask_prompts = merge(results)
    return await respond(merged, params, pixels, mask_prompts if len(results) > 1 else None)


def _points_of(params: PointParams | BoxParams) -> tuple[list[list[float]], list[int]]:
    xs, ys = params.points_x or [], params.points_y or []
    if len(xs) != len(ys):
        raise InvalidPrompt(f"points_x has {len(xs)} values but points_y has {len(ys)}: give one y per x",
                            field="points_y")
    labels = params.labels if params.labels is not None else [1] * len(xs)
    return [[x, y] for x, y in zip(xs, ys)], labels


def _boxes_of(params: PointParams | BoxParams) -> list[list[float]]:
    try:
        single = params.single_box()
    except ValueError as exc:
        raise InvalidPrompt(f"incomplete box: {exc}", field="x2") from None
    return (params.boxes or []) + ([single] if single else [])


async def run_box(engine: Sam3Engine, pixels: np.ndarray, params: BoxParams):
    boxes = _boxes_of(params)
    if not boxes:
        raise InvalidPrompt("a box is required: give x1, y1, x2, y2 (or boxes=[[x1, y1, x2, y2], ...])", field="x1")
    points, labels = _points_of(params)
    common = dict(mask_threshold=params.mask_threshold, confidence_threshold=params.confidence_threshold or 0.0,
                  max_masks=params.max_masks)
    if points:  # a box refined by points describes one object
        if len(boxes) != 1:
            raise InvalidPrompt("points can refine exactly one box; send several boxes without points", field="boxes")
        result = await engine.segment_points(pixels, points, labels, box=boxes[0], **common)
    else:
        result = await engine.segment_boxes(pixels, boxes, **common)
    return await respond(result, params, pixels)


async def run_points(engine: Sam3Engine, pixels: np.ndarray, params: PointParams):
    points, labels = _points_of(params)
    if not points:
        raise InvalidPrompt("points are required: give points_x and points_y (e.g. '100,200' and '50,80')",
                            field="points_x")
    boxes = _boxes_of(params)
    if len(boxes) > 1:
        raise InvalidPrompt("points take at most one box", field="boxes")
    result = await engine.segment_points(
        pixels, points, labels, box=boxes[0] if boxes else None, mask_threshold=params.mask_threshold,
        confidence_threshold=params.confidence_threshold or 0.0, multimask=params.multimask_output,
        max_masks=params.max_masks,
    )
    return await respond(result, params, pixels)


async def run_auto(engine: Sam3Engine, pixels: np.ndarray, params: AutoParamsModel):
    auto = AutoParams(
        points_per_side=params.points_per_side, points_per_batch=params.points_per_batch,
        pred_iou_thresh=params.pred_iou_thresh, stability_score_thresh=params.stability_score_thresh,
        box_nms_thresh=params.box_nms_thresh, min_mask_region_area=params.min_mask_region_area,
        mask_threshold=params.mask_threshold, max_masks=params.max_masks,
    )
    result = await engine.segment_auto(pixels, auto)
    if params.confidence_threshold:
        keep = result.scores >= params.confidence_threshold
        result.masks, result.boxes, result.scores = result.masks[keep], result.boxes[keep], result.scores[keep]
    return await respond(result, params, pixels)


def _register(kind: str, params_model: type, runner: Runner, summary: str, example: dict) -> None:
    """Mount POST /segment/{kind}, /segment/{kind}/base64 and /segment/{kind}/url."""
    name = kind.capitalize()
    base64_model = create_model(f"{name}Base64Request", __base__=(params_model, Base64Image))
    url_model = create_model(f"{name}UrlRequest", __base__=(params_model, UrlImage))
    common = dict(response_model=SegmentResponse, responses={**ERRORS, 200: VISUALIZATION})

    async def upload(engine: EngineDep, settings: SettingsDep, params: Annotated[params_model, Form()],
                     image: Annotated[UploadFile, File(description="The image file")]):
        return await runner(engine, await image_from_upload(image, settings), params)

    async def from_base64(engine: EngineDep, settings: SettingsDep,
                          body: Annotated[base64_model, Body(openapi_examples=base64_example(example))]):
        return await runner(engine, await image_from_base64(body.image_base64, settings), body)

    async def from_url(engine: EngineDep, settings: SettingsDep,
                       body: Annotated[url_model, Body(openapi_examples=url_example(example))]):
        return await runner(engine, await image_from_url(body.image_url, settings), body)

    for path, endpoint, mode in ((f"/segment/{kind}", upload, "file upload"),
                                 (f"/segment/{kind}/base64", from_base64, "base64 JSON"),
                                 (f"/segment/{kind}/url", from_url, "image URL")):
        endpoint.__doc__ = f"{summary} ({mode})."
        router.add_api_route(path, endpoint, methods=["POST"], summary=f"{summary} ({mode})",
                             operation_id=f"segment_{kind}_{mode.split()[0].lower()}", **common)


_register("text", TextParams, run_text, "Every instance of a concept", {"text": "cat"})
_register("box", BoxParams, run_box, "The object inside each box", {"x1": 60, "y1": 20, "x2": 400, "y2": 290})
_register("points", PointParams, run_points, "The object at the points",
          {"points_x": [230], "points_y": [150], "labels": [1]})
_register("auto", AutoParamsModel, run_auto, "Segment everything",
          {"points_per_side": 8, "pred_iou_thresh": 0.5, "stability_score_thresh": 0.5})
