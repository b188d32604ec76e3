"""Run the Ray Serve application on this machine, in the foreground, until SIGTERM or Ctrl-C.

Called by deploy/ray/run_local.sh (which sets PYTHONPATH). Starts a private Ray instance (never joins another
one on the machine), REPLICAS CPU replicas of the app behind Serve's proxy on HOST:PORT, prints one "ready"
line, and on SIGTERM / SIGINT shuts Serve down and stops every Ray process it started.

Environment: REPLICAS (2), PORT (8000), HOST (127.0.0.1), RAY_NUM_CPUS (the machine's cores),
RAY_TMPDIR (Ray's session and log directory), and the server's own SAM3_* / HF_TOKEN / TORCH_NUM_THREADS.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

# Read at import by Ray's modules, here and in every Ray process (they inherit this process's environment
# through the raylet); so set before `ray` is first imported, which is why ray and sam3_serve are imported late.
RAY_ENV = {
    "RAY_SERVE_SESSION_ID_HEADER_KEY": "x-sam3-image-key",
    "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "sam3_proxy:proxy_middlewares",
    # A one-machine cluster: Ray then binds and talks on 127.0.0.1 instead of the machine's network address.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report leaves the machine
}


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < minimum:
        sys.exit(f"run_local: {name}={raw!r} must be an integer >= {minimum}")
    return int(raw)


def _configure_environment(replicas: int, cpus: int) -> None:
    os.environ.update(RAY_ENV)
    # Replicas share the cores: without this each one would start a thread per core and they would thrash.
    os.environ.setdefault("TORCH_NUM_THREADS", str(max(1, cpus // replicas)))


def _stop_on_signals() -> None:
    """SIGINT (Ctrl-C), SIGTERM and SIGHUP all stop the server through the `finally` that shuts Ray down.

    SIGINT too, explicitly: a shell starts background commands with SIGINT ignored, and Python keeps that.
    """
    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def _serve(replicas: int, cpus: int, host: str, port: int) -> None:
    """Start Serve and the application, then wait (until interrupted)."""
    import ray
    from ray import serve
    from sam3_serve import APP_NAME, Sam3ServeArgs, build_app

    serve.start(http_options={"host": host, "port": port})
    args = Sam3ServeArgs(min_replicas=replicas, max_replicas=replicas, num_cpus=cpus / replicas)
    serve.run(build_app(args), name=APP_NAME, route_prefix="/")
    print(f"run_local: ready on http://{host}:{port} with {replicas} replica(s) of "
          f"{os.environ.get('SAM3_MODEL', 'facebook/sam3')}; Ray at {ray.get_runtime_context().gcs_address}",
          flush=True)
    while True:
        time.sleep(3600)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    replicas, port = _int_env("REPLICAS", 2), _int_env("PORT", 8000)
    host = os.environ.get("HOST", "127.0.0.1")
    cpus = _int_env("RAY_NUM_CPUS", os.cpu_count() or 1)
    _configure_environment(replicas, cpus)
    _stop_on_signals()

    import ray
    from ray import serve

    try:
        # address="local": a new private instance, even if `ray start` left one on this machine.
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level=logging.WARNING)
        _stop_on_signals()  # after ray.init, which installs handlers of its own
        _serve(replicas, cpus, host, port)
    except KeyboardInterrupt as interrupt:
        print(f"run_local: stopping ({interrupt or 'SIGINT'})", flush=True)
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP):  # a second SIGTERM must not cut the cleanup short
            signal.signal(signum, signal.SIG_IGN)
        try:
            if ray.is_initialized():
                serve.shutdown()
        finally:
            ray.shutdown()
    print("run_local: stopped", flush=True)


if __name__ == "__main__":
    main()
