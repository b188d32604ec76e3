"""SAM3_PRECISION: what auto picks on which hardware, what /health, /metrics and the log say, and what the caches
hold under bf16 (the parity of masks under both precisions is in test_image_parity.py and test_video_engine.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import SimpleNamespace

import pytest
import torch
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from transformers import Sam3VideoModel
from transformers.models.sam3.modeling_sam3 import Sam3ViTRoPEAttention

from sam3_api.engine import automatic
from sam3_api.engine import precision as precision_module
from sam3_api.engine.bf16_rope import ComputeDtypeRoPEAttention
from sam3_api.engine.devmodel import ensure_dev_checkpoint
from sam3_api.engine.precision import Precision, resolve
from sam3_api.engine.video import ArrayFrames, ObjectPrompt
from sam3_api.main import create_app
from sam3_api.serving.defaults import MASK_THRESHOLD
from tests.conftest import (CACHE_DIR, auto_params, dev_settings, limits, random_image, reference_model,
                            video_request)
from tests.video_reference import moving_square_frames

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def no_native_bf16(monkeypatch) -> None:
    """Make torch report a CPU without AMX or AVX-512 BF16 (an older Xeon, most laptops)."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)


def test_auto_is_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    no_native_bf16(monkeypatch)
    chosen = resolve("auto", CPU)
    assert chosen.name == "fp32" and "no native bf16" in chosen.reason


@pytest.mark.parametrize("amx,avx512_bf16", [(True, False), (False, True), (True, True)])
def test_auto_is_bf16_on_a_cpu_with_amx_or_avx512_bf16(monkeypatch, amx, avx512_bf16):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    chosen = resolve("auto", CPU)
    assert chosen.name == "bf16" and chosen.reason.startswith("auto: this CPU multiplies bf16 natively")


def test_auto_on_cuda_follows_the_gpus_native_bf16():
    assert resolve("auto", CUDA, cuda_native=lambda: True).name == "bf16"
    assert resolve("auto", CUDA, cuda_native=lambda: False).name == "fp32"


def test_an_explicit_setting_wins_over_the_hardware(monkeypatch, caplog):
    no_native_bf16(monkeypatch)
    assert resolve("fp32", CPU, cpu_native=lambda: True) == Precision("fp32", "SAM3_PRECISION=fp32")
    with caplog.at_level(logging.WARNING, logger=precision_module.__name__):
        forced = resolve("bf16", CPU)
    assert forced.name == "bf16" and forced.reason.startswith("SAM3_PRECISION=bf16")
    assert "slower than fp32" in caplog.text


def test_an_unknown_precision_is_refused_by_the_settings():
    with pytest.raises(ValueError, match="precision"):
        dev_settings(precision="fp16")


def test_default_server_on_a_cpu_without_native_bf16_runs_fp32_and_says_so(monkeypatch, caplog):
    no_native_bf16(monkeypatch)
    settings = dev_settings(precision="auto")
    with caplog.at_level(logging.INFO), TestClient(create_app(settings)) as client:
        client.app.state.services.engine.wait_ready(timeout=300)
        health = client.get("/health").json()
        metrics = client.get("/metrics").text
    assert health["precision"] == "fp32" and "no native bf16" in health["precision_reason"]
    assert precision_gauges(metrics) == {"fp32": 1.0}
    assert "precision fp32 on cpu: auto: this CPU has no native bf16 matmul" in caplog.text


def test_bf16_server_names_its_precision_in_health_metrics_and_log(caplog):
    with caplog.at_level(logging.INFO), TestClient(create_app(dev_settings(precision="bf16"))) as client:
        client.app.state.services.engine.wait_ready(timeout=300)
        health = client.get("/health").json()
        metrics = client.get("/metrics").text
    assert health["precision"] == "bf16" and health["precision_reason"].startswith("SAM3_PRECISION=bf16")
    assert precision_gauges(metrics) == {"bf16": 1.0}
    assert "precision bf16" in caplog.text


def precision_gauges(metrics_text: str) -> dict[str, float]:
    return {sample.labels["precision"]: sample.value for family in text_string_to_metric_families(metrics_text)
            if family.name == "sam3_precision" for sample in family.samples}


def test_bf16_cache_holds_bf16_features_at_half_the_bytes(engine, bf16_engine):
    image = random_image(90, 130, seed=5)
    sizes = {}
    for name, each in (("fp32", engine), ("bf16", bf16_engine)):
        prepared = asyncio.run(each.embed(image))
        embedding = each.cache.get(prepared.key)
        tensors = [*embedding.tracker, *embedding.detector.fpn_hidden_states]
        assert {t.dtype for t in tensors} == {torch.float32 if name == "fp32" else torch.bfloat16}
        sizes[name] = embedding.nbytes
    assert sizes["bf16"] * 2 == sizes["fp32"]


def test_bf16_video_frame_features_are_cached_in_bf16(bf16_engine):
    video = bf16_engine.interactive_video(ArrayFrames(moving_square_frames(4)), MASK_THRESHOLD)
    result = asyncio.run(bf16_engine.video_prompt(video, 1, 2, box=[25, 40, 65, 80]))
    assert [obj.object_id for obj in result.objects] == [1]
    feature_maps, positions = video._features[2].tracker
    assert {t.dtype for t in feature_maps} == {torch.bfloat16}
    cached = video.tracker.session.cache.get_vision_features(2)  # what the tracker itself reads back
    assert {t.dtype for t in cached["vision_feats"]} == {torch.bfloat16}


def test_exemplar_boxes_work_under_bf16_on_cpu(bf16_engine):
    """transformers' own Sam3Model raises under CPU bf16 autocast with exemplar boxes (torchvision's roi_align);
    the engine runs that head in fp32 from the bf16 cache instead."""
    [found] = asyncio.run(bf16_engine.segment_text(random_image(90, 130, seed=6), [None],
                                                   exemplar_boxes=[[10, 10, 80, 60]], thresholds=limits()))
    assert found.num_masks > 0


@contextlib.contextmanager
def linear_output_dtypes(model: torch.nn.Module):
    """{part: dtypes its nn.Linear layers produced while the block ran}: the ViT, the image/video mask decoder."""
    parts = {"vit": model.detector_model.vision_encoder, "mask decoder": model.tracker_model.mask_decoder}
    seen: dict[str, set[torch.dtype]] = {name: set() for name in parts}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: seen[name].add(out.dtype))
             for name, part in parts.items() for module in part.modules() if isinstance(module, torch.nn.Linear)]
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def video_run(engine, request):
    async def go():
        run = engine.video_run(ArrayFrames(moving_square_frames(4)), request)
        while not run.done:
            await engine.video_step(run)
    asyncio.run(go())


def interactive(engine):
    video = engine.interactive_video(ArrayFrames(moving_square_frames(4)), MASK_THRESHOLD)
    asyncio.run(engine.video_prompt(video, 1, 1, points=[[60, 60]], labels=[1]))
    asyncio.run(engine.video_add_concept(video, 2, "cat", 0.0, 5))


BF16, FP32 = {torch.bfloat16}, {torch.float32}
ONE_BOX = video_request(objects=[ObjectPrompt(1, 1, box=[25, 40, 65, 80])])
# Under bf16: {part: dtype}. The image prompt decoder runs in fp32 on purpose (Precision.decoder_autocast).
PATHS = {
    "text": (lambda e, img: asyncio.run(e.segment_text(img, ["cat"], thresholds=limits())),
             {"vit": BF16, "mask decoder": set()}),
    "box": (lambda e, img: asyncio.run(e.segment_boxes(img, [[10, 10, 80, 60]], thresholds=limits())),
            {"vit": BF16, "mask decoder": FP32}),
    "points": (lambda e, img: asyncio.run(e.segment_points(img, [[40, 30]], [1], thresholds=limits())),
               {"vit": BF16, "mask decoder": FP32}),
    "automatic": (lambda e, img: asyncio.run(e.segment_auto(img, auto_params(points_per_side=2))),
                  {"vit": BF16, "mask decoder": FP32}),
    "video text tracking": (lambda e, img: video_run(e, video_request(texts=["cat"])), {"vit": BF16}),
    "video object tracking": (lambda e, img: video_run(e, ONE_BOX),
                              {"vit": BF16, "mask decoder": BF16}),
    "interactive video": (lambda e, img: interactive(e), {"vit": BF16, "mask decoder": BF16}),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_every_model_path_computes_in_the_engines_precision(engine, bf16_engine, path):
    run, expected_bf16 = PATHS[path]
    for each, expected in ((engine, None), (bf16_engine, expected_bf16)):
        image = random_image(90, 130, seed=100 + list(PATHS).index(path))  # new to both engines: the ViT runs
        with linear_output_dtypes(each.runtime.model) as seen:
            run(each, image)
        if expected is None:  # fp32: every part that ran computed in fp32
            assert seen["vit"] == FP32 and seen["mask decoder"] <= FP32, f"{path} under fp32: {seen}"
        else:
            assert {name: seen[name] for name in expected} == expected, f"{path} under bf16: {seen}"


def test_bf16_encoder_weights_give_the_same_bits_as_autocast_over_fp32_weights(bf16_engine):
    """Under bf16 the ViT's and text encoder's matmul weights are stored in bf16 (precision.bf16_encoder_weights):
    autocast would cast them to bf16 on every call anyway, so the features must not change by one bit."""
    encoders = bf16_engine.runtime.model.detector_model
    assert {m.weight.dtype for m in encoders.vision_encoder.modules() if isinstance(m, torch.nn.Linear)} == BF16
    assert encoders.vision_encoder.backbone.layer_norm.weight.dtype == torch.float32, "norms keep fp32 weights"
    reference = reference_model(Sam3VideoModel, ensure_dev_checkpoint(CACHE_DIR), "bf16")  # only weights differ
    pixels = torch.rand(1, 3, *[bf16_engine.runtime.processor.image_processor.size[k] for k in ("height", "width")])
    tokens = bf16_engine.runtime.processor.tokenizer("red cup", padding="max_length", max_length=32, return_tensors="pt")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        ours = encoders.get_vision_features(pixel_values=pixels)
        theirs = reference.detector_model.get_vision_features(pixel_values=pixels)
        our_text = encoders.get_text_features(**tokens, return_dict=True).pooler_output
        their_text = reference.detector_model.get_text_features(**tokens, return_dict=True).pooler_output
    for a, b in zip([*ours.fpn_hidden_states, ours.last_hidden_state], [*theirs.fpn_hidden_states, theirs.last_hidden_state]):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert torch.equal(our_text, their_text)


def test_automatic_batches_are_sized_by_the_fp32_features_the_decoder_reads():
    """The bf16 cache holds half the bytes, but the image prompt decoder copies fp32 features for every prompt
    of a batch: the CPU batch must not double under bf16 (it would double the memory the budget bounds)."""
    shapes = [(1, 32, 288, 288), (1, 64, 144, 144), (1, 256, 72, 72)]  # full-size tracker features
    batches = {dtype: automatic.default_batch(SimpleNamespace(tracker=[torch.zeros(s, dtype=dtype) for s in shapes]),
                                              "cpu") for dtype in (torch.float32, torch.bfloat16)}
    assert batches[torch.bfloat16] == batches[torch.float32] == 4


def vit_outputs(rotation_in_compute_dtype: bool, autocast: bool, seed: int = 5) -> torch.Tensor:
    model = reference_model(Sam3VideoModel, ensure_dev_checkpoint(CACHE_DIR),
                            "bf16" if rotation_in_compute_dtype else "fp32")
    vit, config = model.detector_model.vision_encoder, model.config.detector_config.vision_config.backbone_config
    switched = sum(type(m) is ComputeDtypeRoPEAttention for m in vit.modules())
    assert switched == (config.num_hidden_layers if rotation_in_compute_dtype else 0)
    pixels = torch.rand(1, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        return vit.backbone(pixels).last_hidden_state.float()


def test_the_vit_rotation_in_the_compute_dtype_is_transformers_arithmetic_in_fp32_and_close_under_bf16():
    """bf16_rope re-states Sam3ViTRoPEAttention.forward with the rotation in the query's dtype: in fp32 it must
    be transformers' own result bit for bit; under bf16 autocast only the rotation's rounding moves it."""
    assert torch.equal(vit_outputs(True, False), vit_outputs(False, False))
    ours, theirs, exact = vit_outputs(True, True), vit_outputs(False, True), vit_outputs(False, False)
    assert not torch.equal(ours, theirs), "under bf16 the rotation must run in bf16"
    assert ((ours - theirs).norm() / theirs.norm()) < 0.02
    # no further from fp32 than transformers' own bf16 run, within a margin
    assert ((ours - exact).norm() / exact.norm()) < 1.5 * ((theirs - exact).norm() / exact.norm()) + 0.005


def test_only_the_bf16_engine_rotates_in_bf16(engine, bf16_engine):
    def attention_types(each):
        return {type(m).__name__ for m in each.runtime.model.detector_model.vision_encoder.modules()
                if isinstance(m, Sam3ViTRoPEAttention)}
    assert attention_types(engine) == {"Sam3ViTRoPEAttention"}
    assert attention_types(bf16_engine) == {"ComputeDtypeRoPEAttention"}
