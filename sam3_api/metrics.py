"""Prometheus instruments that the engine, the model worker and the job runner update (prometheus-client).

One Sam3Metrics per engine, in its own CollectorRegistry rather than the process-wide default: tests run many
servers in one process, and each /metrics must describe its own server. /metrics (api/metrics.py) exposes
this registry together with the HTTP metrics and the live gauges read at scrape time (queue depth, embedding
cache, WebSocket sessions, load state, GPU memory).

For the video job runner (it holds the engine):
    engine.metrics.video_jobs.labels(status="running").set(3)      # one gauge per job status
    engine.metrics.video_frames_per_second.set(fps)                # frames/s of the job(s) now running
    engine.metrics.video_frames.inc()                              # one per frame step done
Model time of its frame steps is recorded by the worker under the `label` passed to submit()/run()
(e.g. label="video"). Like errors.py, this module imports nothing internal, so every layer may use it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Model time spans 1 ms (a click on dev-tiny) to minutes (a full-size encode or automatic run on a CPU).
MODEL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
VIDEO_JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")  # jobs/store.py


class Sam3Metrics:
    """The sam3_* instruments of one server."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.model_seconds = Histogram(
            "sam3_model_seconds", "Model-thread time of each job, by prompt kind (text, box, points, auto, ...)",
            ["kind"], buckets=MODEL_BUCKETS, registry=registry)
        self.queue_wait_seconds = Histogram(
            "sam3_queue_wait_seconds", "Time a job waited for the model thread, by priority",
            ["priority"], buckets=MODEL_BUCKETS, registry=registry)
        self.model_jobs = Counter(
            "sam3_model_jobs", "Model jobs by kind and outcome (ok, error, out_of_memory, cancelled: dropped "
            "while queued, stopped: stopped at a checkpoint, expired: waited past SAM3_REQUEST_TIMEOUT_S)",
            ["kind", "outcome"], registry=registry)
        self.client_disconnects = Counter(
            "sam3_client_disconnects", "HTTP requests cancelled because their client went away", registry=registry)
        self.rate_limited = Counter(
            "sam3_rate_limited_requests", "Requests refused with 429 by SAM3_RATE_LIMIT", registry=registry)
        self.load_attempts = Gauge(
            "sam3_model_load_attempts", "Attempts made to load the model (retries after transient errors)",
            registry=registry)
        self.precision = Gauge(
            "sam3_precision", "1 for the precision the model runs in (fp32 or bf16; see SAM3_PRECISION)",
            ["precision"], registry=registry)
        self.video_jobs = Gauge("sam3_video_jobs", "Video jobs by status", ["status"], registry=registry)
        self.video_frames_per_second = Gauge(
            "sam3_video_frames_per_second", "Frames per second of the running video jobs", registry=registry)
        self.video_frames = Counter("sam3_video_frames", "Video frame steps completed", registry=registry)
        for status in VIDEO_JOB_STATUSES:  # present from the first scrape, so dashboards see zeros
            self.video_jobs.labels(status)
        self.batch_images = Counter("sam3_batch_images", "Batch job images recorded, by outcome (ok; error: the "
                                    "image failed and its error was recorded)", ["outcome"], registry=registry)
        self.batch_images_per_second = Gauge(
            "sam3_batch_images_per_second", "Images per second of the running batch job", registry=registry)
        for outcome in ("ok", "error"):
            self.batch_images.labels(outcome)
