"""GET /metrics in Prometheus' text format: HTTP traffic, the model queue, the cache, sessions, load state.

Three sources in one per-app registry:
  * HTTP requests by route, method and status (prometheus-fastapi-instrumentator): http_requests_total and
    the http_request_duration_seconds histogram. Unknown paths are grouped as handler="none".
  * the engine's instruments (sam3_api/metrics.py): sam3_model_seconds by prompt kind, jobs by outcome,
    queue waits, client disconnects, rate-limit refusals, video jobs and frames per second;
  * live state read at each scrape (StateCollector): queue depth, embedding-cache hits / misses / entries /
    bytes, WebSocket sessions, model load state, and GPU memory on CUDA.
Open by default; with SAM3_METRICS_REQUIRE_KEY a request needs a valid API key (401 otherwise).
"""

from __future__ import annotations

from typing import Iterator

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as http_metrics

from ..engine.memory import gpu_memory_bytes
from .deps import ApiKeyDep, ServicesDep
from .errors import error_response
from .state import services_of

router = APIRouter(tags=["operations"])
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
MODEL_STATES = ("loading", "ready", "failed")


class StateCollector(Collector):
    """Reads the app's engine and sessions at scrape time, and yields the engine's own instruments."""

    def __init__(self, app: FastAPI):
        self.app = app

    def collect(self) -> Iterator[Metric]:
        services = services_of(self.app)
        engine = services.engine
        yield from engine.metrics.registry.collect()
        yield from _queue(engine.worker)
        yield from _cache(engine.cache)
        yield _gauge("sam3_websocket_sessions", "Open WebSocket sessions", len(services.ws_sessions))
        yield _gauge("sam3_video_sessions", "Open /ws/video sessions", len(services.ws_video_sessions))
        yield from _model(engine.status)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _queue(worker) -> Iterator[Metric]:
    yield _gauge("sam3_queue_depth", "Model jobs queued or running", worker.pending)
    yield _gauge("sam3_queue_capacity", "Most model jobs queued or running (SAM3_MAX_QUEUE)", worker.max_queue)
    waiting = GaugeMetricFamily("sam3_queue_waiting", "Model jobs waiting, by priority", labels=["priority"])
    for priority, count in worker.queued_by_priority().items():
        waiting.add_metric([priority], count)
    yield waiting


def _cache(cache) -> Iterator[Metric]:
    yield CounterMetricFamily("sam3_embedding_cache_hits", "Prompts that reused a cached image embedding",
                              value=cache.hits)
    yield CounterMetricFamily("sam3_embedding_cache_misses", "Prompts that had to run the vision backbone",
                              value=cache.misses)
    yield _gauge("sam3_embedding_cache_entries", "Images whose embedding is cached", len(cache))
    yield _gauge("sam3_embedding_cache_bytes", "Bytes held by cached embeddings", cache.nbytes)


def _model(status) -> Iterator[Metric]:
    state = GaugeMetricFamily("sam3_model_state", "1 for the model's current state", labels=["state"])
    for name in MODEL_STATES:
        state.add_metric([name], 1.0 if status.state == name else 0.0)
    yield state
    yield _gauge("sam3_model_loaded", "1 once the model is loaded and serving", 1.0 if status.ready else 0.0)
    memory = gpu_memory_bytes(status.device)
    if memory:
        gpu = GaugeMetricFamily("sam3_gpu_memory_bytes", "CUDA memory of this process", labels=["kind"])
        for kind, value in memory.items():
            gpu.add_metric([kind], value)
        yield gpu


def install_metrics(app: FastAPI) -> CollectorRegistry:
    """Instrument HTTP traffic (adds a middleware), register the state collector, mount GET /metrics."""
    registry = services_of(app).metrics_registry
    instrumentator = Instrumentator(should_group_status_codes=False, excluded_handlers=["^/metrics$"],
                                    registry=registry)
    instrumentator.add(http_metrics.requests(registry=registry),
                       http_metrics.latency(registry=registry, buckets=HTTP_BUCKETS))
    instrumentator.instrument(app)
    registry.register(StateCollector(app))
    app.include_router(router)
    return registry


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(services: ServicesDep, api_key: ApiKeyDep) -> Response:
    """Prometheus text format; needs an API key when SAM3_METRICS_REQUIRE_KEY is set."""
    if services.settings.metrics_require_key and api_key is None:
        return error_response(401, "GET /metrics needs a valid API key (SAM3_METRICS_REQUIRE_KEY is set)",
                              "unauthorized", {"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(services.metrics_registry), media_type=CONTENT_TYPE_LATEST)
