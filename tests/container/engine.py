"""The container engine the container tests drive: podman (or Docker where a working engine answers).

Images and containers made here are named sam3-api-ci-*; `Engine.started` remembers every container a test
starts so the fixtures remove them all, even when a test fails. Only 127.0.0.1 ports are published.
Without an engine the tests are skipped with the reason, except under CI=true, where they fail: a green CI run
has built and run the image. .ci/run installs podman, runc, debootstrap and catatonit with apt.

Caches outside the repository, reused by the next run on the same machine:
  podman's own storage      the stand-in base image and the layers of both images (unchanged layers are reused)
  $SAM3_CI_CACHE            the stand-in's rootfs tarball (default /var/cache/sam3-api-ci, see standin_base.sh)
  the build cache mount     pip's wheel cache (Dockerfile: RUN --mount=type=cache; buildah keeps it in /var/tmp)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO

HERE = Path(__file__).resolve().parent
BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
IMAGE = "sam3-api-ci:latest"
RAY_IMAGE = "sam3-api-ci-ray:latest"
UID = 10001
# The build sees the host's CA bundle, so pip inside trusts what pip outside does (TLS-inspecting proxies).
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT_S = 1500


def skip_or_fail(reason: str):
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str, timeout: float = 5) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


@dataclass
class Engine:
    exe: str
    started: list[str] = field(default_factory=list)

    @property
    def is_podman(self) -> bool:
        return Path(self.exe).name == "podman"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.is_podman:
            env["CONTAINERS_CONF"] = str(HERE / "containers.conf")
        return env

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([self.exe, *args], capture_output=True, text=True, timeout=timeout, env=self.env())
        if check and done.returncode != 0:
            raise AssertionError(f"{self.exe} {' '.join(args[:3])} ... exited {done.returncode}:\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def build(self, tag: str, dockerfile: str = "Dockerfile", build_args: dict[str, str] | None = None) -> float:
        """Build `dockerfile` with the repository as context; returns the seconds it took."""
        args = ["build", "-f", dockerfile, "-t", tag]
        if self.is_podman:  # --format docker: OCI images have no HEALTHCHECK; podman would drop it
            args += ["--format", "docker", "--network", "host"]
            if CA_BUNDLE.exists():
                args += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        started = time.monotonic()
        self(*args, str(REPO), timeout=BUILD_TIMEOUT_S)
        return time.monotonic() - started

    def image_size(self, tag: str) -> int:
        return int(self("image", "inspect", tag, "--format", "{{.Size}}").stdout.strip())

    def start(self, name: str, image: str, port: int, env: dict[str, str], *options: str,
              command: tuple[str, ...] = ()) -> str:
        """`run -d` with 127.0.0.1:port published to the container's PORT; remembered for cleanup."""
        args = ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{env.get('PORT', '8000')}"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        self.started.append(name)
        self(*args, *options, image, *command)
        return name

    def inspect(self, name: str) -> dict:
        return json.loads(self("inspect", name).stdout)[0]

    def logs(self, name: str) -> str:
        done = self("logs", name, check=False)
        return done.stdout + done.stderr

    def wait_ready(self, name: str, base_url: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http_status(f"{base_url}/health/ready") == 200:
                return
            if not self.inspect(name)["State"]["Running"]:
                raise AssertionError(f"container {name} exited:\n{self.logs(name)[-4000:]}")
            time.sleep(1)
        raise AssertionError(f"{base_url}/health/ready not 200 after {timeout} s:\n{self.logs(name)[-4000:]}")

    def wait_exit(self, name: str, timeout: float = 120) -> int:
        done = self("wait", name, timeout=timeout)
        return int(done.stdout.strip().splitlines()[-1])

    def run_healthcheck(self, name: str) -> subprocess.CompletedProcess:
        """The image's HEALTHCHECK command, run now (podman: `healthcheck run`; Docker: the same test via exec)."""
        if self.is_podman:
            return self("healthcheck", "run", name, check=False, timeout=60)
        test = self.inspect(name)["Config"]["Healthcheck"]["Test"]
        command = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
        return self("exec", name, *command, check=False, timeout=60)

    def remove(self, name: str) -> None:
        """Force-remove a container and its anonymous volumes (the image declares VOLUME /data)."""
        self("rm", "-f", "-v", *(["-t", "0"] if self.is_podman else []), name, check=False)

    def remove_started(self) -> None:
        for name in reversed(self.started):
            self.remove(name)
        self.started.clear()


def find_engine() -> Engine | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0:
        return Engine(docker)
    podman = shutil.which("podman")
    return Engine(podman) if podman else None


def ensure_base_image(engine: Engine) -> None:
    """python:3.11-slim-bookworm: present, pulled, or (podman, no Docker Hub) the debootstrap stand-in."""
    if engine("image", "exists" if engine.is_podman else "inspect", BASE_IMAGE, check=False).returncode == 0:
        return
    try:  # Docker Hub, where reachable (it is not from the machines this project's CI runs on)
        if engine("pull", BASE_IMAGE, check=False, timeout=90).returncode == 0:
            return
    except subprocess.TimeoutExpired:
        pass
    if not engine.is_podman or not shutil.which("debootstrap"):
        skip_or_fail(f"{BASE_IMAGE} cannot be pulled and no stand-in can be built (needs podman and debootstrap)")
    done = subprocess.run(["bash", str(HERE / "standin_base.sh")], capture_output=True, text=True, timeout=1200,
                          env=engine.env())
    assert done.returncode == 0, f"standin_base.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
