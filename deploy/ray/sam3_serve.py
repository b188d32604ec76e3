"""Ray Serve application: N replicas of the unchanged sam3-api app, each request routed to the replica that
holds its image.

Every replica runs `create_app()` (REST, WebSocket, the web page, /health: nothing is re-implemented here)
with its own model, model thread and embedding cache. An image's embedding lives in one replica's cache, so
Serve's consistent-hash router (experimental in Ray 2.60) hashes the client's `X-Sam3-Image-Key` header onto
a ring of replicas: every request about one image reaches the same replica; requests without a key get a
fresh random key each and spread. When the owner is full (max_ongoing_requests) the router tries the next
`num_fallback_replicas` replicas on the ring, which then encode the image themselves: a miss, never an error.

The router reads the header named by RAY_SERVE_SESSION_ID_HEADER_KEY, and browsers cannot set headers on a
WebSocket, so every Ray process needs two environment variables (run_local.py and deploy/k8s set them):
    RAY_SERVE_SESSION_ID_HEADER_KEY=x-sam3-image-key
    RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=sam3_proxy:proxy_middlewares   (?image_key=... -> the header)

Import path for `serve run` / a Serve config file: `sam3_serve:build_app` (with deploy/ray and the repository
root on PYTHONPATH), builder arguments as in Sam3ServeArgs, e.g. `num_gpus=1 min_replicas=1 max_replicas=4`.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel, Field, model_validator
from ray import serve
from ray.serve import Application
from ray.serve.config import RequestRouterConfig

from sam3_api.config import Settings

log = logging.getLogger("ray.serve")
ROUTER_CLASS = "ray.serve.experimental.consistent_hash_router.ConsistentHashRouter"
ROUTING_HEADER = "x-sam3-image-key"  # the value RAY_SERVE_SESSION_ID_HEADER_KEY must have
DEPLOYMENT_NAME = "Sam3"
APP_NAME = "sam3"


class Sam3ServeArgs(BaseModel):
    """Builder arguments (`serve run sam3_serve:build_app key=value`, or `args:` in a Serve config)."""

    min_replicas: int = Field(1, ge=1, description="Replicas kept running (= max_replicas: no autoscaling).")
    max_replicas: int = Field(1, ge=1, description="Upper bound of the autoscaler.")
    num_gpus: float = Field(0, ge=0, description="GPUs per replica: 1 on GPU nodes, 0 for CPU replicas.")
    num_cpus: float = Field(1, gt=0, description="CPUs Ray reserves per replica (fractional locally).")
    # A WebSocket holds one of these for its whole life, so this is SAM3_MAX_QUEUE plus room for sockets.
    max_ongoing_requests: int = Field(32, ge=1, description="Requests one replica takes before fallback.")
    max_queued_requests: int = Field(64, ge=1, description="Requests waiting for a replica; beyond: 503.")
    target_ongoing_requests: float = Field(8, gt=0, description="Autoscaler target per replica.")
    num_fallback_replicas: int = Field(1, ge=0, description="Ring successors tried when the owner is full.")
    num_virtual_nodes: int = Field(100, ge=1, description="Points per replica on the hash ring.")
    startup_timeout_s: float = Field(1800, gt=0, description="Model load (incl. download) a replica may take.")

    @model_validator(mode="after")
    def _check_bounds(self) -> "Sam3ServeArgs":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})")
        return self


@serve.ingress()
class Sam3Replica:
    """One replica: the whole sam3-api app, joining the hash ring only once its model is loaded."""

    async def __init__(self, startup_timeout_s: float):
        # Imported here, in the replica: the driver and Serve's build step never need torch.
        from sam3_api.main import create_app

        replica = serve.get_replica_context().replica_id
        settings = Settings(replica_id=replica.unique_id)
        # Video jobs live in the process that runs them: one data directory per replica, never shared.
        settings.data_dir = settings.data_dir / "replicas" / replica.unique_id
        self.sam3_app = create_app(settings)  # `app` is Serve's own property
        self.engine = self.sam3_app.state.services.engine
        # Serve routes to a replica as soon as its constructor returns; a replica still loading would answer
        # 503 for every image hashed to it, so load first (the lifespan's own engine.start() is then a no-op).
        status = await asyncio.to_thread(self.engine.wait_ready, startup_timeout_s)
        if not status.ready:  # Serve retries the replica and `serve status` shows this message
            raise RuntimeError(f"SAM 3 failed to load on replica {replica.unique_id}: {status.error}")
        log.info("replica %s ready: %s on %s", replica.unique_id, status.model, status.device)

    def __serve_build_asgi_app__(self):
        return self.sam3_app

    def check_health(self) -> None:
        """Ray's periodic health check: the engine's own state (a failure restarts the replica)."""
        status = self.engine.status
        if not status.ready:
            raise RuntimeError(f"SAM 3 engine is {status.state}: {status.error or 'not ready'}")


def deployment_options(args: Sam3ServeArgs) -> dict:
    """Serve deployment options: resources, back-pressure, the image-affine router, scaling."""
    options = dict(
        name=DEPLOYMENT_NAME,
        ray_actor_options={"num_cpus": args.num_cpus, "num_gpus": args.num_gpus},
        max_ongoing_requests=args.max_ongoing_requests,
        max_queued_requests=args.max_queued_requests,
        request_router_config=RequestRouterConfig(
            request_router_class=ROUTER_CLASS,
            request_router_kwargs={"num_virtual_nodes": args.num_virtual_nodes,
                                   "num_fallback_replicas": args.num_fallback_replicas},
        ),
        health_check_period_s=10,
        health_check_timeout_s=30,
        graceful_shutdown_wait_loop_s=1,
        graceful_shutdown_timeout_s=10,
    )
    if args.min_replicas == args.max_replicas:
        options["num_replicas"] = args.min_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": args.min_replicas, "max_replicas": args.max_replicas,
            "initial_replicas": args.min_replicas, "target_ongoing_requests": args.target_ongoing_requests,
            # Slow to scale down: a removed replica takes its cached images with it.
            "upscale_delay_s": 30, "downscale_delay_s": 600,
        }
    return options


def build_app(args: Sam3ServeArgs) -> Application:
    """Application builder: the deployment bound with its options."""
    deployment = serve.deployment(Sam3Replica).options(**deployment_options(args))
    return deployment.bind(startup_timeout_s=args.startup_timeout_s)
