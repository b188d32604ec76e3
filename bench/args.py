"""The command-line options every benchmark shares: which model, on which device."""

from __future__ import annotations

import argparse
from pathlib import Path


def model_arguments(parser: argparse.ArgumentParser, cache_dir: bool = False) -> None:
    """--model, --full and --device (and --cache-dir where the script builds checkpoints itself)."""
    parser.add_argument("--model", default="dev-tiny", help="dev-tiny, a hub id or a checkpoint directory")
    parser.add_argument("--full", action="store_true", help="full-size random-weight checkpoint (built once)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    if cache_dir:
        parser.add_argument("--cache-dir", type=Path, default=None, help="where dev/full checkpoints are kept")
