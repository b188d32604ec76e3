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
from ...errors import InvalidPrompt
from ...serving import image
from ...serving.image import ImagePrompts
from ..deps import EngineDep, SettingsDep
from ..encoding import respond
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
    prompts = ImagePrompts(texts=texts, exemplar_boxes=params.exemplar_boxes or [], **_common(params),
                           exemplar_labels=params.exemplar_labels)
    found = await image.segment_concepts(engine, pixels, prompts)
    return await respond(found.segmentation, params, pixels, found.mask_prompts)


def _common(params) -> dict:
    return dict(confidence_threshold=params.confidence_threshold, mask_threshold=params.mask_threshold,
                max_masks=params.max_masks)


def _points_of(params: PointParams | BoxParams) -> tuple[list[list[float]], list[int] | None]:
    xs, ys = params.points_x or [], params.points_y or []
    if len(xs) != len(ys):
        raise InvalidPrompt(f"points_x has {len(xs)} values but points_y has {len(ys)}: give one y per x",
                            field="points_y")
    return [[x, y] for x, y in zip(xs, ys)], params.labels


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
    prompts = ImagePrompts(boxes=boxes, points=points, point_labels=labels, **_common(params))
    return await respond((await image.segment_objects(engine, pixels, prompts)).segmentation, params, pixels)


async def run_points(engine: Sam3Engine, pixels: np.ndarray, params: PointParams):
    points, labels = _points_of(params)
    if not points:
        raise InvalidPrompt("points are required: give points_x and points_y (e.g. '100,200' and '50,80')",
                            field="points_x")
    prompts = ImagePrompts(points=points, point_labels=labels, boxes=_boxes_of(params),
                           multimask=params.multimask_output, **_common(params))
    return await respond((await image.segment_objects(engine, pixels, prompts)).segmentation, params, pixels)


async def run_auto(engine: Sam3Engine, pixels: np.ndarray, params: AutoParamsModel):
    auto = image.auto_params(
        points_per_side=params.points_per_side, points_per_batch=params.points_per_batch,
        pred_iou_thresh=params.pred_iou_thresh, stability_score_thresh=params.stability_score_thresh,
        box_nms_thresh=params.box_nms_thresh, min_mask_region_area=params.min_mask_region_area,
        mask_threshold=params.mask_threshold, max_masks=params.max_masks,
    )
    found = await image.segment_everything(engine, pixels, auto, params.confidence_threshold)
    return await respond(found.segmentation, params, pixels)


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

    for path, endpoint, mode, suffix in ((f"/segment/{kind}", upload, "file upload", "upload"),
                                         (f"/segment/{kind}/base64", from_base64, "base64 JSON", "base64"),
                                         (f"/segment/{kind}/url", from_url, "image URL", "url")):
        endpoint.__doc__ = f"{summary} ({mode})."
        router.add_api_route(path, endpoint, methods=["POST"], summary=f"{summary} ({mode})",
                             operation_id=f"segment_{kind}_{suffix}", **common)


_register("text", TextParams, run_text, "Every instance of a concept", {"text": "cat"})
_register("box", BoxParams, run_box, "The object inside each box", {"x1": 60, "y1": 20, "x2": 400, "y2": 290})
_register("points", PointParams, run_points, "The object at the points",
          {"points_x": [230], "points_y": [150], "labels": [1]})
_register("auto", AutoParamsModel, run_auto, "Segment everything",
          {"points_per_side": 8, "pred_iou_thresh": 0.5, "stability_score_thresh": 0.5})
