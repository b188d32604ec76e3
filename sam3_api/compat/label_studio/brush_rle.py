"""Label Studio's brush RLE (format "rle" of a brushlabels result), written with numpy.

The format is thi.ng's rle-pack over the mask's RGBA bytes (each pixel's 0/255 repeated 4 times, row-major):
32 bits value count, 5 bits word size - 1 (7), four 4-bit run-size classes - 1 (3, 4, 8, 16 bits), then per
run a repeat flag, a 2-bit class, the length - 1 and the 8-bit value; zero bits pad to a byte (a whole zero
byte when already aligned). label-studio-sdk's converter (brush.mask2rle) is the reference, but its pins
(opencv-python-headless < 4.13, numpy < 2.3 at 2.1.x) cannot install beside ours, and it builds the stream
as a Python string of '0'/'1' characters; this encoder reproduces its output byte for byte (the e2e judge
compares both on real masks) in vectorised numpy.
"""

from __future__ import annotations

import numpy as np

CHANNELS = 4
# (upper run length, class index, length bits) of the sdk's run-size classes [3, 4, 8, 16]
_CLASSES = ((8, 0, 3), (16, 1, 4), (256, 2, 8))
_LONGEST_PIECE = 2 ** 16


def _header_bits(count: int) -> str:
    return f"{count:032b}" + f"{8 - 1:05b}" + "".join(f"{size - 1:04b}" for size in (3, 4, 8, 16))


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run lengths and values of a 1-d array."""
    ends = np.append(np.flatnonzero(values[1:] != values[:-1]), values.size - 1)
    lengths = np.diff(np.append(-1, ends))
    return lengths.astype(np.int64), values[ends].astype(np.int64)


def _codes(lengths: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (code, bit width) per run; runs over 256 use the 16-bit class, split into pieces of 2**16."""
    codes = np.zeros_like(lengths)
    widths = np.zeros_like(lengths)
    single = lengths == 1
    codes[single], widths[single] = values[single], 14  # "0" "00" "000" value
    lower = 1
    for upper, klass, bits in _CLASSES:
        chosen = (lengths > lower) & (lengths <= upper)
        codes[chosen] = (1 << (bits + 10)) | (klass << (bits + 8)) | ((lengths[chosen] - 1) << 8) | values[chosen]
        widths[chosen] = bits + 11
        lower = upper
    long = np.flatnonzero(lengths > 256)
    if long.size == 0:
        return codes, widths
    out_codes, out_widths, start = [], [], 0
    for index in long:
        out_codes.append(codes[start:index])
        out_widths.append(widths[start:index])
        full = (int(lengths[index]) - 1) // _LONGEST_PIECE  # whole 2**16 pieces, then the rest (1..2**16)
        piece = np.asarray([_LONGEST_PIECE] * full + [int(lengths[index]) - full * _LONGEST_PIECE], dtype=np.int64)
        out_codes.append((1 << 26) | (3 << 24) | ((piece - 1) << 8) | values[index])
        out_widths.append(np.full(piece.size, 27, dtype=np.int64))
        start = index + 1
    out_codes.append(codes[start:])
    out_widths.append(widths[start:])
    return np.concatenate(out_codes), np.concatenate(out_widths)


def mask_to_brush_rle(mask: np.ndarray) -> list[int]:
    """The brush RLE of a 2-d mask (truthy = painted), as the list of byte values Label Studio stores."""
    values = np.repeat(np.where(np.asarray(mask).ravel() > 0, 255, 0), CHANNELS)
    codes, widths = _codes(*_runs(values))
    shifts = np.arange(26, -1, -1)
    bits = (codes[:, None] >> shifts) & 1
    keep = shifts[None, :] < widths[:, None]  # each code's own low `width` bits, most significant first
    header = np.frombuffer(_header_bits(values.size).encode(), dtype=np.uint8) - ord("0")
    stream = np.concatenate([header, bits[keep].astype(np.uint8)])
    stream = np.concatenate([stream, np.zeros(8 - stream.size % 8, dtype=np.uint8)])
    return np.packbits(stream).tolist()
