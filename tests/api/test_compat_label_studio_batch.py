"""Pre-labelling several tasks in one Label Studio /predict is batch work: SAM3_BATCH_BACKBONE_IMAGES images per
backbone step, embeddings kept out of the cache annotators' clicks use, and the same regions as one task per call."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from label_studio_sdk.converter.brush import decode_rle

from tests.api.conftest import ready_client
from tests.api.test_compat_label_studio import config
from tests.conftest import png_bytes, random_image


def task(index: int) -> dict:
    """A task with an image of its own (a new embedding-cache key)."""
    image = base64.b64encode(png_bytes(random_image(48, 64, seed=index))).decode()
    return {"id": index, "data": {"image": f"data:image/png;base64,{image}"}}


def predict(client, tasks: list[dict]) -> list[dict]:
    response = client.post("/label-studio/predict", json={"tasks": tasks, "label_config": config()})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def regions(prediction: dict) -> list[tuple[str, np.ndarray, float]]:
    return [(r["value"]["brushlabels"][0], decode_rle(r["value"]["rle"]), r["score"]) for r in prediction["result"]]


def test_several_tasks_share_backbone_steps_and_stay_out_of_the_shared_cache(monkeypatch):
    client = ready_client(batch_backbone_images=2, label_studio_threshold=0.0)
    engine = client.app.state.services.engine
    steps = []
    encode_many = engine.runtime.encode_many
    monkeypatch.setattr(engine.runtime, "encode_many", lambda images: steps.append(len(images)) or encode_many(images))
    tasks = [task(index) for index in range(3)]
    try:
        together = predict(client, tasks)
        assert steps == [2, 1]  # three images: a step of two, then the last alone
        assert len(engine.cache) == 0  # batch work: the shared cache keeps the images being clicked on
        alone = [predict(client, [one])[0] for one in tasks]
        assert len(engine.cache) == 3  # one task per call (the editor opening it): cached for its clicks
    finally:
        client.__exit__(None, None, None)
    assert all(regions(prediction) for prediction in together), "dev-tiny found nothing at threshold 0"
    for batched, single in zip(together, alone):
        assert [label for label, _, _ in regions(batched)] == [label for label, _, _ in regions(single)]
        assert all(np.array_equal(a, b) for (_, a, _), (_, b, _) in zip(regions(batched), regions(single)))
        assert [s for _, _, s in regions(batched)] == pytest.approx([s for _, _, s in regions(single)], abs=1e-5)
