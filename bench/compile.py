"""torch.compile of the vision backbone against eager, under the default precision, in one run. ONE JSON object.

    .venv/bin/python bench/compile.py            # dev-tiny's ViT
    .venv/bin/python bench/compile.py --full     # the full-size ViT (random weights, ~450M parameters)

The backbone (Sam3ViTModel, the ViT every new image and every video frame pays for) is built from the
checkpoint's config with random weights, run eagerly (one warm-up, then the median of --repeats), then
compiled with torch.compile (the first call's time is the warm-up: tracing + code generation) and run again.
The server would offer compilation as a setting only if compiled / eager <= 1 / 1.15 with a bounded warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch._inductor.config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sam3_api.engine.devmodel import dev_tiny_config, dev_tokenizer, full_size_config  # noqa: E402
from sam3_api.engine.precision import resolve  # noqa: E402
from transformers.models.sam3.modeling_sam3 import Sam3ViTModel  # noqa: E402


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", default="default", help="torch.compile mode (default, max-autotune, ...)")
    parser.add_argument("--no-freezing", action="store_true",
                        help="leave inductor's freezing off (on by default: PyTorch's advice for CPU inference, it "
                             "folds the weights into oneDNN's prepacked formats)")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = (full_size_config() if args.full else dev_tiny_config(dev_tokenizer())).detector_config.vision_config
    backbone = Sam3ViTModel(config.backbone_config).eval().to(device)
    precision = resolve(args.precision, device)
    size = config.backbone_config.image_size
    pixels = torch.randn(1, 3, size, size, device=device)

    def run(model) -> None:
        with torch.inference_mode(), precision.autocast(device):
            model(pixels).last_hidden_state.float().sum().item()

    timed(lambda: run(backbone))  # warm-up: allocator, oneDNN primitive cache
    eager = statistics.median(timed(lambda: run(backbone)) for _ in range(args.repeats))
    torch._inductor.config.freezing = not args.no_freezing
    compiled = torch.compile(backbone, mode=args.mode)
    warm_up = timed(lambda: run(compiled))
    compiled_s = statistics.median(timed(lambda: run(compiled)) for _ in range(args.repeats))
    print(json.dumps({
        "model": "full-size ViT, random weights" if args.full else "dev-tiny ViT", "device": device.type,
        "precision": precision.name, "image_size": size, "repeats": args.repeats, "mode": args.mode,
        "freezing": not args.no_freezing,
        "eager_s": round(eager, 3), "compile_warm_up_s": round(warm_up, 1), "compiled_s": round(compiled_s, 3),
        "speedup": round(eager / compiled_s, 3), "torch": torch.__version__,
    }, indent=2))


if __name__ == "__main__":
    main()
