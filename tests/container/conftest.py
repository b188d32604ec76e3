"""Fixtures of the container tests: the engine, and the image built once per session from the Dockerfile."""

from __future__ import annotations

import time

import pytest

from tests.container.engine import IMAGE, Engine, ensure_base_image, find_engine, skip_or_fail


@pytest.fixture(scope="session")
def engine() -> Engine:
    found = find_engine()
    if found is None:
        skip_or_fail("no container engine: install podman (apt-get install podman runc debootstrap catatonit) "
                     "or Docker")
    yield found
    found.remove_started()


@pytest.fixture(scope="session")
def image(engine: Engine) -> str:
    """The repository's Dockerfile built as sam3-api-ci:latest (layers reused from the last run when unchanged)."""
    started = time.monotonic()
    ensure_base_image(engine)
    base_seconds = time.monotonic() - started
    seconds = engine.build(IMAGE)
    size = engine.image_size(IMAGE)
    print(f"\n[container] base image ready in {base_seconds:.0f} s; {IMAGE} built in {seconds:.0f} s, "
          f"{size / 1e9:.2f} GB")
    return IMAGE


@pytest.fixture
def cleanup(engine: Engine):
    """Removes the containers this test started, passed or failed."""
    before = len(engine.started)
    yield engine
    for name in engine.started[before:]:
        engine.remove(name)
    del engine.started[before:]
