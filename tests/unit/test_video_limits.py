"""Hostile and broken videos: each gets the right 4xx with a helpful message; limits stop decoding;
a crashing, hanging or lying decoder child never harms the test process (which stands in for the server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sam3_api.errors import InvalidVideo, VideoTooLarge
from sam3_api.media.video import FrameSelection, FrameStore, VideoLimits, decode, decode_video, probe_video
from tests import videos

LIMITS = VideoLimits()
FRAME_BYTES = 160 * 120 * 3


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return videos.make_video(tmp_path_factory.mktemp("clip") / "clip.mp4")


def refused(error, path: Path, store_dir: Path, limits: VideoLimits = LIMITS, selection=FrameSelection()):
    """decode_video must raise `error`; return it after checking nothing of a store was left behind."""
    with pytest.raises(error) as caught:
        decode_video(path, store_dir, limits, selection)
    if store_dir.exists():
        assert os.listdir(store_dir) == []
    with pytest.raises(FileNotFoundError):
        FrameStore(store_dir)
    return caught.value


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (videos.write_truncated_mp4, ["truncated or corrupt"]),
        (videos.write_png, ["PNG image", "not a video"]),
        (videos.write_audio_only, ["no video stream", "audio"]),
        (videos.write_zero_frame_avi, ["no decodable frames"]),
        (lambda path: write_text(path, "just some text, no video here\n" * 50), ["could not be opened", "MP4"]),
    ],
    ids=["truncated-mp4", "png", "audio-only", "zero-frames", "text"],
)
def test_a_file_that_is_not_a_usable_video_is_a_400_that_says_why(tmp_path, make, words):
    error = refused(InvalidVideo, make(tmp_path / "input"), tmp_path / "store")
    assert error.status_code == 400 and error.code == "invalid_video"
    assert all(word in error.message for word in words), error.message


def test_a_codec_outside_the_allow_list_is_refused_by_name(tmp_path):
    path = videos.make_video(tmp_path / "lossless.mkv", frames=3, codec="ffv1")
    error = refused(InvalidVideo, path, tmp_path / "store")
    assert "'ffv1' is not accepted" in error.message and "H.264" in error.message


def test_a_cut_file_whose_index_survived_is_refused_as_truncated_not_kept_as_short(tmp_path, clip):
    # Cut at a frame boundary: every remaining packet decodes, only the count betrays the cut.
    videos.write_lying_avi(tmp_path / "cut.avi", claimed_frames=40, frames=10)
    error = refused(InvalidVideo, tmp_path / "cut.avi", tmp_path / "store")
    assert "declares 40 frames but only 10" in error.message


def test_playlists_and_concat_scripts_never_reach_their_demuxers(tmp_path, clip):
    # Without the container allow-list FFmpeg's concat demuxer would read clip.mp4 from the server's disk.
    (tmp_path / "clip.mp4").write_bytes(clip.read_bytes())
    concat = write_text(tmp_path / "list.txt", "ffconcat version 1.0\nfile clip.mp4\n")
    playlist = write_text(
        tmp_path / "list.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nclip.mp4\n#EXT-X-ENDLIST\n"
    )
    for path in (concat, playlist):
        assert "could not be opened" in refused(InvalidVideo, path, tmp_path / "store").message


def test_a_header_claiming_a_million_frames_is_refused_before_decoding(tmp_path):
    path = videos.write_lying_avi(tmp_path / "million.avi", claimed_frames=10**6)
    error = refused(VideoTooLarge, path, tmp_path / "store")
    assert error.status_code == 413 and error.code == "video_too_large"
    assert "header declares 1000000 frames" in error.message and "SAM3_VIDEO_MAX_FRAMES" in error.message
    assert "frame_stride" in error.message  # says how to fix it


def test_an_8k_video_is_refused_from_its_header(tmp_path):
    error = refused(VideoTooLarge, videos.write_8k_avi(tmp_path / "8k.avi"), tmp_path / "store")
    assert "7680x4320" in error.message and "SAM3_VIDEO_MAX_PIXELS" in error.message
    with pytest.raises(VideoTooLarge):
        probe_video(tmp_path / "8k.avi", LIMITS)


def test_frames_bigger_than_the_header_said_stop_decoding(tmp_path):
    path = videos.write_mjpeg_avi(tmp_path / "grows.avi", [(160, 120)] * 3 + [(640, 480)])
    error = refused(VideoTooLarge, path, tmp_path / "store", VideoLimits(max_pixels=160 * 120 * 2))
    assert "640x480" in error.message and "SAM3_VIDEO_MAX_PIXELS" in error.message


def test_more_frames_than_the_header_declared_stop_decoding_at_max_frames(tmp_path):
    path = videos.write_lying_avi(tmp_path / "liar.avi", claimed_frames=3, frames=10)
    error = refused(VideoTooLarge, path, tmp_path / "store", VideoLimits(max_frames=5))
    assert "decoding found more than 5 frames" in error.message and "SAM3_VIDEO_MAX_FRAMES" in error.message


def test_max_frames_counts_the_frames_kept_after_the_selection(clip, tmp_path):
    limits = VideoLimits(max_frames=12)
    assert decode_video(clip, tmp_path, limits, FrameSelection(stride=4)).frame_count == 12
    assert "48 frames" in refused(VideoTooLarge, clip, tmp_path / "all", limits).message


def test_max_duration_refuses_a_long_header_and_stops_a_lying_one(clip, tmp_path):
    error = refused(VideoTooLarge, clip, tmp_path / "a", VideoLimits(max_duration_s=1.0))
    assert "header declares 2.0 s" in error.message and "SAM3_VIDEO_MAX_DURATION_S" in error.message
    # The same limit while decoding: the header says 3 frames (0.125 s), the timestamps run to 0.375 s.
    liar = videos.write_lying_avi(tmp_path / "liar.avi", claimed_frames=3, frames=10)
    error = refused(VideoTooLarge, liar, tmp_path / "b", VideoLimits(max_duration_s=0.2))
    assert "decoding reached" in error.message
    # Stopping early at end_frame keeps a long video within the limit.
    short = decode_video(clip, tmp_path / "c", VideoLimits(max_duration_s=1.0), FrameSelection(end_frame=11))
    assert short.frame_count == 12 and short.source_frame_count == 48


def test_the_store_budget_refuses_a_big_header_and_stops_a_lying_one(clip, tmp_path):
    limits = VideoLimits(max_store_bytes=5 * FRAME_BYTES)
    assert "SAM3_VIDEO_MAX_STORE_BYTES" in refused(VideoTooLarge, clip, tmp_path / "a", limits).message
    liar = videos.write_lying_avi(tmp_path / "liar.avi", claimed_frames=3, frames=10)
    assert "SAM3_VIDEO_MAX_STORE_BYTES" in refused(VideoTooLarge, liar, tmp_path / "b", limits).message


def test_the_byte_limit_is_checked_before_anything_decodes(clip, tmp_path):
    error = refused(VideoTooLarge, clip, tmp_path / "a", VideoLimits(max_bytes=1024))
    assert "SAM3_VIDEO_MAX_BYTES" in error.message
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert "empty" in refused(InvalidVideo, empty, tmp_path / "b").message


def test_a_decode_past_its_deadline_is_killed_and_answered_413(clip, tmp_path):
    error = refused(VideoTooLarge, clip, tmp_path / "store", VideoLimits(decode_timeout_s=0.05))
    assert "SAM3_VIDEO_DECODE_TIMEOUT_S" in error.message


def test_the_decoder_memory_limit_stops_a_frame_too_big_to_decode(tmp_path, clip):
    # The limit is the setting's minimum (512 MiB): the decoder process alone takes ~270 MB of address space,
    # so a lower one left too little room for the normal clip below. One 16384x8192 frame needs ~600 MB.
    big = videos.write_flat_mjpeg_avi(tmp_path / "16k.avi", (16384, 8192))
    limits = VideoLimits(max_pixels=10**9, decoder_memory_bytes=512 * 1024**2)
    error = refused(VideoTooLarge, big, tmp_path / "a", limits)
    assert "SAM3_VIDEO_DECODER_MEMORY_BYTES" in error.message
    assert decode_video(clip, tmp_path / "b", limits).frame_count == 48  # the limit leaves room for normal work


@pytest.mark.parametrize(
    "behaviour, error, words",
    [
        ("segfault", InvalidVideo, ["crashed", "SIGSEGV"]),
        ("garbage", InvalidVideo, ["crashed"]),
        ("exit", InvalidVideo, ["crashed", "exit status 3"]),
        ("lie", InvalidVideo, ["inconsistent"]),
        ("unknown_error", InvalidVideo, ["not one of ours"]),
    ],
)
def test_a_crashing_or_lying_decoder_is_an_invalid_video_and_the_server_is_unharmed(
    clip, tmp_path, monkeypatch, behaviour, error, words
):
    monkeypatch.setattr(decode, "WORKER_MODULE", "tests.unit.misbehaving_video_worker")
    monkeypatch.setenv("SAM3_TEST_WORKER_BEHAVIOUR", behaviour)
    caught = refused(error, clip, tmp_path / "store")
    assert all(word in caught.message for word in words), caught.message
    monkeypatch.undo()
    assert decode_video(clip, tmp_path / "after", LIMITS).frame_count == 48


def test_a_hanging_decoder_is_killed_at_the_deadline(clip, tmp_path, monkeypatch):
    started = []

    class RecordingPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(decode.subprocess, "Popen", RecordingPopen)
    monkeypatch.setattr(decode, "WORKER_MODULE", "tests.unit.misbehaving_video_worker")
    monkeypatch.setenv("SAM3_TEST_WORKER_BEHAVIOUR", "hang")
    began = time.monotonic()
    error = refused(VideoTooLarge, clip, tmp_path / "store", VideoLimits(decode_timeout_s=1.5))
    assert "SAM3_VIDEO_DECODE_TIMEOUT_S" in error.message
    assert time.monotonic() - began < 10  # the worker sleeps 120 s
    assert len(started) == 1 and started[0].returncode == -signal.SIGKILL  # killed and reaped


@pytest.mark.skipif(os.name != "posix", reason="resource limits are POSIX only")
def test_the_decoder_child_lowers_its_hard_resource_limits_for_good():
    script = """
import resource
from sam3_api.media.video.limits import VideoLimits
from sam3_api.media.video.worker import _lower_resource_limits
_lower_resource_limits(VideoLimits(max_store_bytes=2**30, decoder_memory_bytes=2**31, decode_timeout_s=10), decoding=True)
print([resource.getrlimit(kind)[1] for kind in (resource.RLIMIT_AS, resource.RLIMIT_FSIZE, resource.RLIMIT_CORE)])
try:
    resource.setrlimit(resource.RLIMIT_AS, (2**32, 2**32))
    print("raised")
except ValueError:
    print("stuck")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    hard_limits, verdict = result.stdout.split("\n")[:2]
    assert hard_limits == str([2**31, 2**30 + 1024**2, 0])
    if os.geteuid() != 0:  # root with CAP_SYS_RESOURCE may raise hard limits: run the server as a user
        assert verdict == "stuck"
