"""deploy/ray/ without a cluster: the proxy's query-to-header middleware, the builder's deployment options."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "deploy" / "ray"))
import run_local  # noqa: E402
import sam3_proxy  # noqa: E402
import sam3_serve  # noqa: E402

KEY = "ab" * 32


def through_proxy_middleware(scope: dict) -> dict:
    """The scope the Serve proxy routes on after ImageKeyFromQuery."""
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    asyncio.run(sam3_proxy.ImageKeyFromQuery(app)(scope, None, None))
    return seen


def header(scope: dict, name: bytes) -> list[bytes]:
    return [value for key, value in scope["headers"] if key == name]


def test_a_websocket_image_key_parameter_becomes_the_routing_header():
    scope = through_proxy_middleware({"type": "websocket", "query_string": f"image_key={KEY}".encode(),
                                      "headers": [(b"host", b"x")]})
    assert header(scope, b"x-sam3-image-key") == [KEY.encode()]


def test_a_header_sent_by_the_client_wins_over_the_parameter():
    scope = through_proxy_middleware({"type": "http", "query_string": b"image_key=from-query",
                                      "headers": [(b"x-sam3-image-key", b"from-header")]})
    assert header(scope, b"x-sam3-image-key") == [b"from-header"]


@pytest.mark.parametrize("query", [b"", b"image_key=", b"other=1", b"image_key=" + b"k" * 257, b"image_key=a%0Ab"])
def test_no_routing_header_without_a_plausible_key(query):
    scope = through_proxy_middleware({"type": "websocket", "query_string": query, "headers": []})
    assert header(scope, b"x-sam3-image-key") == []


def test_the_proxy_callback_returns_the_middleware():
    [middleware] = sam3_proxy.proxy_middlewares()
    assert middleware.cls is sam3_proxy.ImageKeyFromQuery


def test_equal_replica_bounds_give_a_fixed_count_and_the_consistent_hash_router():
    options = sam3_serve.deployment_options(sam3_serve.Sam3ServeArgs(min_replicas=2, max_replicas=2, num_cpus=0.5))
    assert options["num_replicas"] == 2 and "autoscaling_config" not in options
    assert options["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0}
    router = options["request_router_config"]
    assert router.request_router_class == sam3_serve.ROUTER_CLASS
    assert router.request_router_kwargs == {"num_virtual_nodes": 100, "num_fallback_replicas": 1}


def test_a_replica_range_gives_autoscaling_with_one_gpu_per_replica():
    args = sam3_serve.Sam3ServeArgs(min_replicas=1, max_replicas=4, num_gpus=1)
    options = sam3_serve.deployment_options(args)
    assert "num_replicas" not in options and options["ray_actor_options"]["num_gpus"] == 1
    scaling = options["autoscaling_config"]
    assert (scaling["min_replicas"], scaling["max_replicas"], scaling["initial_replicas"]) == (1, 4, 1)


def test_builder_arguments_are_checked():
    with pytest.raises(ValidationError, match="below min_replicas"):
        sam3_serve.Sam3ServeArgs(min_replicas=3, max_replicas=2)
    with pytest.raises(ValidationError):
        sam3_serve.Sam3ServeArgs(num_fallback_replicas=-1)


def test_run_local_sets_the_header_the_router_hashes_and_the_proxy_callback():
    assert run_local.RAY_ENV["RAY_SERVE_SESSION_ID_HEADER_KEY"] == sam3_serve.ROUTING_HEADER
    assert run_local.RAY_ENV["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] == "sam3_proxy:proxy_middlewares"
    assert sam3_proxy.IMAGE_KEY_HEADER.decode() == sam3_serve.ROUTING_HEADER


@pytest.mark.parametrize("variable, value", [("REPLICAS", "two"), ("PORT", "0")])
def test_run_local_refuses_a_bad_setting_before_starting_ray(variable, value):
    env = {**os.environ, "REPLICAS": "2", "PORT": "8000", variable: value}
    result = subprocess.run(["bash", "deploy/ray/run_local.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert f"{variable}={value!r} must be an integer" in result.stderr
