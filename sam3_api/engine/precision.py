"""Which precision the model runs in (SAM3_PRECISION), why, and what that means for cached features.

`auto` picks bf16 autocast where the hardware multiplies bf16 natively and fp32 elsewhere:
- CUDA: bf16 when the GPU does it natively (Ampere and later), else fp32;
- CPU: bf16 when torch reports AMX tiles or AVX-512 BF16 (a bf16 matmul on 2 cores of such a Xeon runs
  ~880 GFLOP/s against ~140 in fp32, so the full-size backbone drops from 23-45 s to ~8 s); on any other
  CPU bf16 is emulated and slower than fp32, so fp32.
Under bf16 the matmul weights of the two big encoders (the ViT and the text encoder: 756 of 860 M parameters
at full size) are stored in bf16 (see bf16_encoder_weights); every other weight stays fp32 and autocast casts
it per call, and every op autocast keeps in fp32 (norms, softmax, sigmoid) keeps full-precision weights. The
ViT's rotary position embedding is applied in bf16 (bf16_rope.py), where transformers casts to fp32 for it.
Cached features (the image-embedding cache, a video's frame features) are stored in the compute dtype, so
under bf16 a cached image costs half the bytes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable

import torch

from .bf16_rope import rotate_in_compute_dtype

log = logging.getLogger(__name__)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def cpu_has_native_bf16() -> bool:
    """Does this CPU multiply bf16 natively (AMX tiles or AVX-512 BF16)? Asked of torch, not of /proc."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check() for check in checks if check is not None)


def cuda_has_native_bf16() -> bool:
    """Ampere (sm_80) and later; older GPUs only emulate bf16."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


@dataclass(frozen=True)
class Precision:
    """The resolved precision: `name` is fp32 or bf16, `reason` says why (for /health and the log)."""

    name: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    def autocast(self, device: torch.device):
        """The context every model call runs in: bf16 autocast, or nothing under fp32."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def store(self, value):
        """`value` with every floating tensor in it cast to the compute dtype, for caching.

        Walks tensors, lists, tuples, dicts, dataclasses and transformers' ModelOutputs (dicts), keeping
        their types; anything else is returned as it is.
        """
        if self.name == "fp32":
            return value
        return cast_floats(value, self.dtype)

    def prepare_weights(self, model: torch.nn.Module) -> None:
        """Under bf16, the encoders' matmul weights in bf16 (bf16_encoder_weights) and the ViT's rotary
        embedding applied in bf16 (bf16_rope); nothing under fp32."""
        if self.name == "bf16":
            bf16_encoder_weights(model)
            rotate_in_compute_dtype(model.detector_model.vision_encoder)

    def decoder_features(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Cached tracker features as the image prompt decoder reads them: in fp32 (see decoder_autocast)."""
        return cast_floats(features, torch.float32)

    def decoder_autocast(self, device: torch.device):
        """The image prompt decoder (points, boxes, automatic) runs in fp32 under every precision.

        Measured at full size (random weights, one photo; README, Performance): against fp32 throughout, a bf16
        decoder moved a box mask to IoU 0.944 (points 0.986) whatever the backbone's precision, while the bf16
        backbone with an fp32 decoder gave 0.992 (points 0.994). The decoder is a small share of a click (about
        80 ms at full size on 2 CPU cores in either precision), so fp32 costs nothing that bf16 would save.
        """
        return torch.autocast(device.type, enabled=False)

    def exemplar_boxes_need_fp32(self, device: torch.device) -> bool:
        """torchvision's roi_align (exemplar-box pooling) raises under CPU bf16 autocast, in transformers' own
        Sam3Model too ("Unexpected floating ScalarType in at::autocast::prioritize"): those heads run in fp32."""
        return self.name == "bf16" and device.type == "cpu"


AUTOCAST_MODULES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.ConvTranspose2d)


def bf16_encoder_weights(model: torch.nn.Module) -> None:
    """Store the Linear / Conv weights of the ViT and the text encoder in bf16, in place.

    These encoders run only under bf16 autocast, which casts each Linear / Conv weight to bf16 on every call
    anyway, so the results are the same bits (tests/unit/test_precision.py) while each call skips reading 4
    and writing 2 bytes per parameter: at full size 2.7 GB of memory traffic less per new image (453 M ViT
    weights) and 1.8 GB per new text (303 M, for a matmul over only 32 tokens); the weights take 1.93 GB
    instead of 3.44 (the checkpoint's fp32 pages read for the cast stay mapped as clean page cache). Norms,
    embeddings and every other module keep fp32 weights (autocast runs them in fp32), and so do the heads
    that also run in fp32 under bf16 (the image prompt decoder, the exemplar-box detector on CPU).
    """
    detector = model.detector_model
    for encoder in (detector.vision_encoder, detector.text_encoder):
        for module in encoder.modules():
            if isinstance(module, AUTOCAST_MODULES):
                module.to(torch.bfloat16)


def cast_floats(value, dtype: torch.dtype):
    """`value` with its floating tensors cast to `dtype` (see Precision.store)."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(cast_floats(item, dtype) for item in value)
    if isinstance(value, dict):  # ModelOutput is an OrderedDict whose fields are also attributes
        cast = copy.copy(value)
        for key, item in value.items():
            cast[key] = cast_floats(item, dtype)
        return cast
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: cast_floats(getattr(value, f.name), dtype)
                                             for f in dataclasses.fields(value) if f.init})
    if hasattr(value, "__dict__") and type(value).__name__ == "SimpleNamespace":
        return type(value)(**{key: cast_floats(item, dtype) for key, item in vars(value).items()})
    return value


def resolve(requested: str, device: torch.device,
            cpu_native: Callable[[], bool] = cpu_has_native_bf16,
            cuda_native: Callable[[], bool] = cuda_has_native_bf16) -> Precision:
    """SAM3_PRECISION (auto | fp32 | bf16) on this device -> the precision that runs and why."""
    if requested == "fp32":
        return Precision("fp32", "SAM3_PRECISION=fp32")
    native = cuda_native() if device.type == "cuda" else cpu_native()
    hardware = _hardware(device, native)
    if requested == "bf16":
        if not native:
            log.warning("SAM3_PRECISION=bf16 on a device that only emulates bf16 (%s): expect it slower than fp32",
                        hardware)
        return Precision("bf16", f"SAM3_PRECISION=bf16 ({hardware})")
    if native:
        return Precision("bf16", f"auto: {hardware}")
    return Precision("fp32", f"auto: {hardware}, where bf16 would be slower than fp32")


def _hardware(device: torch.device, native: bool) -> str:
    if device.type == "cuda":
        return "this GPU computes bf16 natively" if native else "this GPU has no native bf16"
    capability = torch.backends.cpu.get_cpu_capability()
    if native:
        return f"this CPU multiplies bf16 natively (AMX / AVX-512 BF16; torch CPU capability {capability})"
    return f"this CPU has no native bf16 matmul (no AMX or AVX-512 BF16; torch CPU capability {capability})"
