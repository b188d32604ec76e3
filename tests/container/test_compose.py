"""docker-compose.yml through a real compose implementation (podman-compose 1.6 in a venv of its own, or
`docker compose` where Docker runs): the documented CPU command comes up healthy on this host without a GPU,
with PORT moved off 8000 so the health check is seen to follow it, and the GPU file still reserves the GPU.

The command run is the README's CPU form plus tests/container/compose.ci.yml (use the image the session built):
    podman-compose -f docker-compose.yml -f docker-compose.cpu.yml -f tests/container/compose.ci.yml up -d
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.conftest import REPO
from tests.container.engine import HERE, free_port
from tests.e2e.sdk_venv import ensure_venv

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
PODMAN_COMPOSE = "podman-compose==1.6.0"  # Debian's 1.0.x garbles list-form health checks
GPU_FILES = ["docker-compose.yml"]
CPU_FILES = ["docker-compose.yml", "docker-compose.cpu.yml"]
SERVICE = "sam3-api"


@pytest.fixture(scope="module")
def compose(engine):
    """compose(*args, env=None, check=True): the compose command, run in the repository root."""
    if engine.is_podman:
        prefix = [str(ensure_venv(PODMAN_COMPOSE).path / "bin" / "podman-compose")]
    else:
        prefix = [engine.exe, "compose"]

    def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*prefix, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                              env={**engine.env(), **(env or {})})
        assert not check or done.returncode == 0, f"{' '.join(args)}: exit {done.returncode}\n" \
                                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    return run


def files(names: list[str]) -> list[str]:
    return [arg for name in names for arg in ("-f", name)]


def merged(compose, names: list[str]) -> dict:
    return yaml.safe_load(compose(*files(names), "config").stdout)["services"][SERVICE]


def gpu_reservations(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def test_gpu_file_reserves_every_nvidia_gpu_and_the_cpu_override_removes_only_that(compose):
    raw = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"][SERVICE]
    assert gpu_reservations(raw) == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    gpu, cpu = merged(compose, GPU_FILES), merged(compose, CPU_FILES)
    assert gpu_reservations(gpu) == gpu_reservations(raw)
    assert gpu_reservations(cpu) == [] and cpu["environment"]["SAM3_DEVICE"] == "cpu"
    assert {key: value for key, value in cpu.items() if key not in ("deploy", "environment")} == \
           {key: value for key, value in gpu.items() if key not in ("deploy", "environment")}


def test_cpu_compose_comes_up_healthy_on_the_configured_port(engine, image, compose):
    port, project = free_port(), f"sam3ci{os.getpid()}"
    env = {"SAM3_MODEL": "dev-tiny", "SAM3_PUBLISH": f"127.0.0.1:{port}", "PORT": "8123"}
    args = ["-p", project, *files(CPU_FILES), "-f", str((HERE / "compose.ci.yml").relative_to(REPO))]
    try:
        compose(*args, "up", "-d", "--no-build", env=env)
        names = engine("ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
                       "--format", "{{.Names}}").stdout.split()
        assert len(names) == 1, names
        name = names[0]
        engine.wait_ready(name, f"http://127.0.0.1:{port}")
        state = engine.inspect(name)
        assert "PORT=8123" in state["Config"]["Env"]
        done = engine.run_healthcheck(name)
        assert done.returncode == 0, done.stdout + done.stderr
        if engine.is_podman:
            assert engine.inspect(name)["State"]["Health"]["Status"] == "healthy"
    finally:
        down = compose(*args, "down", "-v", "-t", "40", env=env, check=False)
        print(f"\n[compose] down: exit {down.returncode} {json.dumps(down.stderr[-300:])}")
