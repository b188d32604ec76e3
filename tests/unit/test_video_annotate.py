"""The annotated MP4: H.264 / yuv420p / faststart that browsers play, masks in each object's colour."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest

from sam3_api.media.masks import palette_colour
from sam3_api.media.video import AnnotatedVideoWriter
from tests import videos

GREY = 128


def write_clip(path: Path, size=(160, 120), frames=12, fps=24.0, masks_for=lambda index: []) -> Path:
    width, height = size
    with AnnotatedVideoWriter(path, width, height, fps) as writer:
        for index in range(frames):
            writer.write(np.full((height, width, 3), GREY, np.uint8), masks_for(index))
    return path


def block_mask(size, x1, y1, x2, y2) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def top_level_atoms(path: Path) -> list[str]:
    data, atoms, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:  # 64-bit size follows
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        atoms.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return atoms


def decoded(path: Path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return stream.codec_context.name, stream.codec_context.pix_fmt, float(stream.average_rate), frames


def test_the_annotated_video_is_h264_yuv420p_with_every_frame_at_its_rate(tmp_path):
    codec, pix_fmt, fps, frames = decoded(write_clip(tmp_path / "out.mp4", frames=12, fps=12.0))
    assert (codec, pix_fmt, fps, len(frames)) == ("h264", "yuv420p", 12.0, 12)
    assert frames[0].shape == (120, 160, 3)


def test_the_index_comes_before_the_media_data_so_browsers_can_stream_it(tmp_path):
    atoms = top_level_atoms(write_clip(tmp_path / "out.mp4"))
    assert "moov" in atoms and "mdat" in atoms
    assert atoms.index("moov") < atoms.index("mdat"), atoms


def test_each_masked_object_shows_its_own_colour_and_the_rest_is_untouched(tmp_path):
    size = (160, 120)
    masks = [(3, block_mask(size, 20, 20, 70, 70)), (4, block_mask(size, 90, 30, 150, 100))]
    _, _, _, frames = decoded(write_clip(tmp_path / "out.mp4", masks_for=lambda index: masks))
    frame = frames[5]
    for object_id, (x, y) in ((3, (45, 45)), (4, (120, 65))):
        expected = 0.5 * GREY + 0.5 * np.array(palette_colour(object_id))
        assert np.abs(frame[y - 5 : y + 5, x - 5 : x + 5].mean(axis=(0, 1)) - expected).max() < 10, object_id
    assert np.abs(frame[100:115, 5:15].astype(int) - GREY).max() < 6  # far from both masks


def test_an_object_keeps_its_colour_from_frame_to_frame(tmp_path):
    size = (160, 120)

    def moving(index):
        return [(7, block_mask(size, 10 + 5 * index, 40, 50 + 5 * index, 80))]

    _, _, _, frames = decoded(write_clip(tmp_path / "out.mp4", masks_for=moving))
    centres = [frames[index][60, 30 + 5 * index].astype(int) for index in (0, 6, 11)]
    assert max(np.abs(c - centres[0]).max() for c in centres) < 8


def test_odd_sizes_are_padded_to_even_and_keep_their_picture(tmp_path):
    picture = videos.frame_pixels(0, (161, 121))
    with AnnotatedVideoWriter(tmp_path / "odd.mp4", 161, 121, 24) as writer:
        for _ in range(3):
            writer.write(picture, [])
        assert writer.frames_written == 3
    _, pix_fmt, _, frames = decoded(tmp_path / "odd.mp4")
    assert frames[0].shape == (122, 162, 3) and pix_fmt == "yuv420p"
    assert np.abs(frames[0][:121, :161].astype(int) - picture).mean() < 4


def test_an_ntsc_rate_is_kept_exactly(tmp_path):
    _, _, fps, _ = decoded(write_clip(tmp_path / "ntsc.mp4", frames=4, fps=30000 / 1001))
    assert fps == pytest.approx(30000 / 1001)


def test_frames_and_masks_of_the_wrong_shape_are_refused(tmp_path):
    with AnnotatedVideoWriter(tmp_path / "out.mp4", 160, 120, 24) as writer:
        with pytest.raises(ValueError, match="frame must be"):
            writer.write(np.zeros((100, 160, 3), np.uint8), [])
        with pytest.raises(ValueError, match="mask of object 2"):
            writer.write(np.zeros((120, 160, 3), np.uint8), [(2, np.zeros((120, 100), bool))])
    with pytest.raises(ValueError):
        AnnotatedVideoWriter(tmp_path / "bad.mp4", 160, 120, 0)


def test_a_job_with_a_frame_stride_renders_its_mp4_at_the_source_speed(tmp_path):
    from sam3_api.jobs.render import render_annotated_video
    from sam3_api.jobs.results import ResultsLog
    from sam3_api.media.video import VideoInfo

    class Frames:  # three kept frames of a 24 fps source, one in every four
        info = VideoInfo(width=64, height=48, fps=24.0, frame_count=3, start_frame=0, frame_stride=4,
                         duration_s=0.5, container="mov", codec="h264")

        def __len__(self):
            return 3

        def read(self, frame):
            return np.full((48, 64, 3), GREY, np.uint8)

    path = render_annotated_video(tmp_path, Frames(), ResultsLog(tmp_path / "results.ndjson"))
    _, _, rate, frames = decoded(path)
    assert len(frames) == 3 and rate == pytest.approx(6.0), "12 source frames of 0.5 s play in 0.5 s"
