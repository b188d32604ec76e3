"""Start `deploy/ray/run_local.sh` for a test, talk to its Ray cluster, and stop it without leftovers.

The cluster is private to the test: its own RAY_TMPDIR and session (every process it starts stays in the
session of run_local.sh, which is how leftovers are found), loopback addresses only, dev-tiny replicas.
Used by test_ray_serve.py and bench/scaleout.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"run_local: ready on (http://\S+) with \d+ replica\(s\) of .*; Ray at (\S+)")
STARTUP_TIMEOUT_S = 240
STOP_TIMEOUT_S = 60
# What a process attaching to run_local's cluster needs (see deploy/ray/run_local.py).
ATTACH_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}

KILL_REPLICA = """
import sys, ray
from ray.serve._private.common import DeploymentID, ReplicaID
ray.init(address=sys.argv[1], logging_level="ERROR")
name = ReplicaID(sys.argv[2], DeploymentID(name=sys.argv[3], app_name=sys.argv[4])).to_full_id_str()
ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
print("killed", name, flush=True)
"""


@dataclass
class RayServe:
    process: subprocess.Popen
    base_url: str
    gcs_address: str
    log_path: Path
    tmpdir: Path

    def kill_replica(self, replica_id: str, deployment: str = "Sam3", app: str = "sam3") -> None:
        """Kill one Serve replica through Ray's API (ray.kill, no restart of that actor)."""
        subprocess.run([sys.executable, "-c", KILL_REPLICA, self.gcs_address, replica_id, deployment, app],
                       env={**os.environ, **ATTACH_ENV}, check=True, timeout=90, capture_output=True)

    def session_processes(self) -> list[int]:
        """Processes of run_local.sh's session (started with start_new_session): the driver and every Ray
        process it spawned, actors included (they get their own process groups, not their own sessions)."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == self.process.pid:  # state ppid pgrp session ...
                found.append(int(proc.name))
        return found

    def leftover_processes(self, settle_s: float = 15) -> list[str]:
        """What is still running of the cluster after `settle_s` (Ray workers exit once their raylet is gone)."""
        deadline = time.monotonic() + settle_s
        while self.session_processes() and time.monotonic() < deadline:
            time.sleep(0.5)
        described = []
        for pid in self.session_processes():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            described.append(f"{pid} {cmdline[:120]}")
        return described

    def stop(self) -> int:
        """SIGTERM (what Ctrl-C does), wait; then make sure nothing of the cluster is left. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.cleanup()
                self.process.wait()
        return self.process.returncode

    def cleanup(self) -> None:
        """Last resort after stop(): kill what is left of our own session, remove the temp dir."""
        for pid in self.session_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def launch(log_path: Path, port: int, replicas: int = 2, env: dict[str, str] | None = None) -> RayServe:
    """Run deploy/ray/run_local.sh in its own session (dev-tiny, 127.0.0.1, a private RAY_TMPDIR)."""
    from tests.conftest import CACHE_DIR

    tmpdir = Path(tempfile.mkdtemp(prefix="sam3ray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 B
    run_env = {**os.environ, "SAM3_MODEL": "dev-tiny", "SAM3_CACHE_DIR": str(CACHE_DIR), "REPLICAS": str(replicas),
               "PORT": str(port), "HOST": "127.0.0.1", "RAY_TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1",
               **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["bash", "deploy/ray/run_local.sh"], cwd=REPO, env=run_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return RayServe(process, "", "", log_path, tmpdir)


def wait_for_log(server: RayServe, pattern: re.Pattern, timeout_s: float = STARTUP_TIMEOUT_S) -> re.Match | None:
    """The first match of `pattern` in run_local's output, or None if it exits or the time runs out first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = pattern.search(server.log_path.read_text(errors="replace"))
        if match or server.process.poll() is not None:
            return match
        time.sleep(0.5)
    return None


def start(log_path: Path, port: int, replicas: int = 2, env: dict[str, str] | None = None) -> RayServe:
    """launch(), then wait for the ready line (the application is RUNNING on every replica)."""
    server = launch(log_path, port, replicas, env)
    match = wait_for_log(server, READY)
    if match:
        server.base_url, server.gcs_address = match.group(1), match.group(2)
        return server
    server.stop()
    server.cleanup()
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    raise RuntimeError(f"run_local.sh was not ready within {STARTUP_TIMEOUT_S} s (exit {server.process.poll()}):\n"
                       f"{tail}")
