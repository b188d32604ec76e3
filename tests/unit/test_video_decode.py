"""Decoding videos into a frame store: sizes, rates, pixels, selection, rotation, formats, FrameStore."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sam3_api.config import Settings
from sam3_api.errors import InvalidPrompt, VideoTooLarge
from sam3_api.media.video import FrameSelection, FrameStore, VideoInfo, VideoLimits, decode_video, probe_video
from sam3_api.media.video.store import FRAMES_FILE, META_FILE
from tests import videos

LIMITS = VideoLimits()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return videos.make_video(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def stored(clip, tmp_path_factory) -> Path:
    """The whole clip decoded once into a store."""
    store_dir = tmp_path_factory.mktemp("store")
    decode_video(clip, store_dir, LIMITS)
    return store_dir


def pyav_frames(path: Path) -> list[np.ndarray]:
    """The reference: every frame decoded directly with PyAV, no rotation applied."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def square_brightness(frame: np.ndarray, index: int) -> tuple[float, float]:
    """Mean of the square's inside (shrunk by 2 px against codec blur) and of a band left of it."""
    x1, y1, x2, y2 = videos.square_box(index)
    inside = frame[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].mean()
    outside = frame[y2 + 4 : y2 + 20, x1:x2].mean()
    return float(inside), float(outside)


def test_an_mp4_decodes_to_every_frame_with_its_size_rate_and_codec(clip, tmp_path):
    info = decode_video(clip, tmp_path, LIMITS)
    assert (info.width, info.height, info.frame_count) == (160, 120, 48)
    assert info.fps == pytest.approx(24.0)
    assert info.duration_s == pytest.approx(2.0)
    assert info.codec == "h264" and "mp4" in info.container.split(",")
    assert info.source_frame_count == 48 and info.rotation == 0
    assert (tmp_path / FRAMES_FILE).stat().st_size == 48 * 160 * 120 * 3


def test_a_stored_frame_shows_the_square_where_it_was_drawn(stored):
    with FrameStore(stored) as store:
        for index in (0, 10, 47):
            inside, outside = square_brightness(store.read(index), index)
            assert inside > 240 and outside < 130, (index, inside, outside)
        # The whole picture, not just the square, matches what was encoded (lossy, so on average).
        assert np.abs(store.read(10).astype(int) - videos.frame_pixels(10)).mean() < 4


def test_frame_store_returns_exactly_the_frames_pyav_decodes(clip, stored):
    reference = pyav_frames(clip)
    with FrameStore(stored) as store:
        assert len(store) == 48
        assert all(np.array_equal(store.read(k), reference[k]) for k in range(48))
        assert np.array_equal(store.read_range(5, 9), np.stack(reference[5:9]))
        assert store.read_range(3, 3).shape == (0, 120, 160, 3)
        with pytest.raises(IndexError):
            store.read(48)
        with pytest.raises(IndexError):
            store.read_range(40, 49)


def test_frame_store_reads_are_correct_from_many_threads_at_once(stored):
    with FrameStore(stored) as store:
        expected = [store.read(k) for k in range(len(store))]
        mismatches = []

        def reader(offset: int) -> None:
            for round_ in range(20):
                k = (offset * 7 + round_ * 5) % len(store)
                if not np.array_equal(store.read(k), expected[k]):
                    mismatches.append(k)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert mismatches == []


def test_selection_keeps_start_and_every_stride_th_frame_up_to_end_frame(clip, tmp_path):
    info = decode_video(clip, tmp_path, LIMITS, FrameSelection(start_frame=5, end_frame=20, stride=4))
    assert info.frame_count == 4 and (info.start_frame, info.frame_stride, info.end_frame) == (5, 4, 20)
    assert [info.source_index(k) for k in range(4)] == [5, 9, 13, 17]
    assert info.output_fps == pytest.approx(6.0)
    reference = pyav_frames(clip)
    with FrameStore(tmp_path) as store:
        for k in range(4):
            assert np.array_equal(store.read(k), reference[info.source_index(k)])
    with pytest.raises(IndexError):
        info.source_index(4)


def test_end_frame_past_the_last_frame_keeps_frames_to_the_end(clip, tmp_path):
    info = decode_video(clip, tmp_path, LIMITS, FrameSelection(start_frame=40, end_frame=1000))
    assert info.frame_count == 8 and info.source_index(7) == 47


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"start_frame": -1}, "start_frame"),
        ({"stride": 0}, "frame_stride"),
        ({"start_frame": 10, "end_frame": 9}, "end_frame"),
        ({"end_frame": -3}, "end_frame"),
        ({"start_frame": 1.5}, "start_frame"),
        ({"stride": True}, "frame_stride"),
    ],
)
def test_an_invalid_selection_is_a_422_naming_the_field(kwargs, field):
    with pytest.raises(InvalidPrompt) as caught:
        FrameSelection(**kwargs)
    assert caught.value.status_code == 422 and caught.value.field == field
    assert field in caught.value.message


def test_start_frame_past_the_last_frame_is_a_422_from_the_header(clip, tmp_path):
    with pytest.raises(InvalidPrompt) as caught:
        decode_video(clip, tmp_path, LIMITS, FrameSelection(start_frame=48))
    assert caught.value.field == "start_frame" and "48 frames" in caught.value.message
    assert not (tmp_path / META_FILE).exists()


def test_start_frame_past_the_last_frame_is_a_422_when_only_decoding_can_tell(tmp_path):
    # WebM declares no frame count, so the decoder finds out at the end of the stream.
    webm = videos.make_video(tmp_path / "clip.webm", frames=12, codec="libvpx-vp9")
    with pytest.raises(InvalidPrompt) as caught:
        decode_video(webm, tmp_path / "store", LIMITS, FrameSelection(start_frame=30))
    assert caught.value.field == "start_frame" and "12 frames" in caught.value.message


def test_phone_rotation_metadata_turns_the_frames_as_a_browser_shows_them(tmp_path):
    # Upright phones record landscape frames plus a display matrix of -90 degrees (turn clockwise).
    path = videos.make_video(tmp_path / "portrait.mp4", frames=6, rotation=-90)
    info = decode_video(path, tmp_path / "store", LIMITS)
    assert (info.width, info.height, info.rotation) == (120, 160, 270)
    coded = pyav_frames(path)
    with FrameStore(tmp_path / "store") as store:
        shown = store.read(0)
    assert shown.shape == (160, 120, 3)
    assert np.array_equal(shown, np.rot90(coded[0], k=-1))  # clockwise
    # The square drawn in the coded frame's top-left corner is now at the top right.
    assert shown[6:26, 94:114].mean() > 240 and shown[6:26, 6:30].mean() < 130


def test_frames_that_change_size_mid_stream_are_scaled_to_the_first_frames_size(tmp_path):
    path = videos.write_mjpeg_avi(tmp_path / "resize.avi", [(160, 120)] * 2 + [(320, 240)] * 2)
    info = decode_video(path, tmp_path / "store", LIMITS)
    assert (info.width, info.height, info.frame_count) == (160, 120, 4)
    with FrameStore(tmp_path / "store") as store:
        late = store.read(3)
    # The frame drawn at 320x240 is that picture shrunk to 160x120.
    shrunk = cv2.resize(videos.frame_pixels(3, (320, 240), 8), (160, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(late.astype(int) - shrunk).mean() < 6


@pytest.mark.parametrize(
    "name, codec",
    [("clip.webm", "libvpx-vp9"), ("clip.mkv", "libx264"), ("clip.avi", "mjpeg"), ("clip.ts", "libx264"),
     ("clip.mov", "libx264"), ("clip.avi", "mpeg4")],
)
def test_every_accepted_container_decodes_to_the_same_picture(tmp_path, name, codec):
    path = videos.make_video(tmp_path / name, frames=12, codec=codec)
    info = decode_video(path, tmp_path / "store", LIMITS)
    assert (info.width, info.height, info.frame_count) == (160, 120, 12)
    with FrameStore(tmp_path / "store") as store:
        inside, outside = square_brightness(store.read(7), 7)
    assert inside > 220 and outside < 130


def test_a_video_with_a_sound_track_decodes_its_pictures(tmp_path):
    path = videos.make_video(tmp_path / "talk.mp4", frames=12, audio=True)
    assert decode_video(path, tmp_path / "store", LIMITS).frame_count == 12


def test_probe_reads_the_header_and_decodes_only_the_first_frame(clip):
    probe = probe_video(clip, LIMITS)
    assert (probe.width, probe.height, probe.declared_frames, probe.codec) == (160, 120, 48, "h264")
    assert probe.fps == pytest.approx(24.0) and probe.duration_s == pytest.approx(2.0)
    # The header is judged for the selection asked for: 48 frames are too many, the first 10 are not.
    limits = VideoLimits(max_frames=10)
    with pytest.raises(VideoTooLarge):
        probe_video(clip, limits)
    assert probe_video(clip, limits, FrameSelection(end_frame=9)).declared_frames == 48


def test_video_info_survives_a_json_round_trip(stored):
    with FrameStore(stored) as store:
        info = store.info
    assert VideoInfo.from_json(info.to_json()) == info
    assert VideoInfo.from_dict({**info.to_dict(), "added_by_a_newer_version": 1}) == info


def test_a_store_without_its_meta_file_is_never_read_as_complete(stored, tmp_path):
    (tmp_path / FRAMES_FILE).write_bytes((stored / FRAMES_FILE).read_bytes())
    with pytest.raises(FileNotFoundError):
        FrameStore(tmp_path)
    (tmp_path / META_FILE).write_text((stored / META_FILE).read_text())
    with open(tmp_path / FRAMES_FILE, "r+b") as handle:
        handle.truncate(10 * 160 * 120 * 3)  # meta promises 48 frames
    with pytest.raises(ValueError):
        FrameStore(tmp_path)


def test_limits_come_from_the_video_settings(monkeypatch):
    monkeypatch.setenv("SAM3_VIDEO_MAX_FRAMES", "77")
    monkeypatch.setenv("SAM3_VIDEO_DECODE_TIMEOUT_S", "12.5")
    limits = VideoLimits.from_settings(Settings(video_max_pixels=1920 * 1080))
    assert (limits.max_frames, limits.decode_timeout_s, limits.max_pixels) == (77, 12.5, 1920 * 1080)
    defaults = VideoLimits.from_settings(Settings())
    assert defaults.max_bytes == 256 * 1024**2 and defaults.max_store_bytes == 8 * 1024**3
    assert defaults.decoder_memory_bytes == 3 * 1024**3 and defaults.max_duration_s == 600
