"""Scale-out on Ray Serve: `SAM3_MODEL=dev-tiny REPLICAS=2 PORT=... ./deploy/ray/run_local.sh`, driven over HTTP
and WebSocket on 127.0.0.1.

One cluster for the module (about 20 s to start on 2 cores); the tests run in file order: the kill comes after
the routing tests because it changes the cluster, then SIGTERM stops it and no Ray process may be left. The
last test starts another cluster and interrupts it (Ctrl-C) while its replicas start. Each image's routing
key is the sha256 of its file, as the README's contract says.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import signal
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import png_bytes, random_image
from tests.e2e import ray_cluster
from tests.e2e.conftest import _free_port

pytestmark = [pytest.mark.e2e, pytest.mark.ray, pytest.mark.timeout(300)]

IMAGES = [png_bytes(random_image(48, 64, seed=700 + i)) for i in range(13)]
KEYS = [hashlib.sha256(image).hexdigest() for image in IMAGES]
KEYED = range(12)  # the 12 images sent with their key; the 13th goes without, to every replica
UNKEYED = 12
POINT = {"points_x": "10", "points_y": "12", "labels": "1"}


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    # 16 cached images per replica: after the kill one replica holds all 12 images and must keep them.
    server = ray_cluster.start(tmp_path_factory.mktemp("ray-serve") / "run_local.log", _free_port(),
                               env={"SAM3_EMBEDDING_CACHE_ENTRIES": "16"})
    try:
        yield server
    finally:
        server.stop()
        server.cleanup()


@pytest.fixture(scope="module")
def client(serve):
    with httpx.Client(base_url=serve.base_url, timeout=60) as client:
        yield client


def segment(client: httpx.Client, index: int, keyed: bool = True) -> httpx.Response:
    headers = {"X-Sam3-Image-Key": KEYS[index]} if keyed else {}
    files = {"image": ("image.png", IMAGES[index], "image/png")}
    return client.post("/segment/points", files=files, data=POINT, headers=headers)


def landing(response: httpx.Response) -> tuple[int, str, str | None]:
    return response.status_code, response.headers["X-Sam3-Replica"], response.headers.get("X-Sam3-Cache")


@dataclass
class Placement:
    """Where each image's three keyed requests landed: (status, replica, cache) per request."""

    rounds: dict[int, list[tuple[int, str, str | None]]]

    @property
    def owners(self) -> dict[int, str]:
        return {index: results[0][1] for index, results in self.rounds.items()}

    @property
    def victim(self) -> str:
        return sorted(set(self.owners.values()))[0]


@pytest.fixture(scope="module")
def placement(client) -> Placement:
    return Placement({index: [landing(segment(client, index)) for _ in range(3)] for index in KEYED})


def ws_url(serve, index: int) -> str:
    """The WebSocket URL with the image key as a query parameter, as a browser sends it."""
    return serve.base_url.replace("http://", "ws://") + f"/ws/realtime?image_key={KEYS[index]}"


def send_init(ws, **fields) -> dict:
    ws.send(json.dumps({"type": "init", **fields}))
    return json.loads(ws.recv(timeout=30))


def click(ws, x: float, y: float) -> list[str]:
    ws.send(json.dumps({"type": "click", "x": x, "y": y, "label": 1}))
    return [json.loads(ws.recv(timeout=30))["type"] for _ in range(2)]


def test_the_three_requests_of_each_of_12_images_land_on_one_replica_miss_then_hit_hit(placement):
    for index, results in placement.rounds.items():
        assert [status for status, _, _ in results] == [200, 200, 200], results
        assert {replica for _, replica, _ in results} == {placement.owners[index]}, f"image {index}: {results}"
        assert [cache for _, _, cache in results] == ["miss", "hit", "hit"], f"image {index}: {results}"
    assert len(set(placement.owners.values())) == 2, f"the 12 images used only {set(placement.owners.values())}"


def test_requests_without_a_key_spread_across_both_replicas(client, placement):
    replicas = Counter(landing(segment(client, UNKEYED, keyed=False))[1] for _ in range(24))
    assert set(replicas) == set(placement.owners.values()), replicas


def test_a_websocket_with_a_key_stays_on_that_keys_replica_for_50_clicks(serve, client, placement):
    index = 3
    owner = placement.owners[index]
    with connect(ws_url(serve, index), open_timeout=30) as ws:
        assert ws.response.headers["X-Sam3-Replica"] == owner
        assert json.loads(ws.recv(timeout=30))["type"] == "session_created"
        image_id = send_init(ws, image=base64.b64encode(IMAGES[index]).decode())["image_id"]
        for n in range(50):
            assert click(ws, 5 + n, 7 + n % 30) == ["point_added", "segmentation_result"], f"click {n}"
    # A new socket with the same key reaches the same replica, which still holds the image: no upload.
    with connect(ws_url(serve, index), open_timeout=30) as ws:
        assert ws.response.headers["X-Sam3-Replica"] == owner
        json.loads(ws.recv(timeout=30))
        assert send_init(ws, image_id=image_id)["type"] == "image_loaded"
    assert landing(segment(client, index)) == (200, owner, "hit")


@dataclass
class AfterKill:
    survivor: str
    rest: dict[int, list[tuple[int, str, str | None]]]
    ws_index: int
    ws_image_id: str
    ws_closed: bool


@pytest.fixture(scope="module")
def after_kill(serve, client, placement) -> AfterKill:
    """Open a WebSocket on the victim, kill the victim, then at once send each image's requests again."""
    victim, owners = placement.victim, placement.owners
    survivor = next(replica for replica in owners.values() if replica != victim)
    ws_index = next(index for index, replica in owners.items() if replica == victim)
    with connect(ws_url(serve, ws_index), open_timeout=30) as ws:
        json.loads(ws.recv(timeout=30))
        image_id = send_init(ws, image=base64.b64encode(IMAGES[ws_index]).decode())["image_id"]
        serve.kill_replica(victim)
        # Ray starts a replacement replica, which joins the hash ring (and takes keys) only once its model is
        # loaded, several seconds later; these 18 requests take well under a second.
        rest = {index: [landing(segment(client, index))] for index in KEYED}
        for index, replica in owners.items():
            if replica == victim:
                rest[index].append(landing(segment(client, index)))
        try:
            ws.recv(timeout=30)
            closed = False
        except ConnectionClosed:
            closed = True
        except TimeoutError:
            closed = False
    return AfterKill(survivor, rest, ws_index, image_id, closed)


def test_a_killed_replicas_images_move_to_the_other_with_one_miss_each_and_the_others_stay_hits(placement,
                                                                                                 after_kill):
    for index, results in after_kill.rest.items():
        expected = ["miss", "hit"] if placement.owners[index] == placement.victim else ["hit"]
        assert results == [(200, after_kill.survivor, cache) for cache in expected], f"image {index}"


def test_a_websocket_whose_replica_died_reconnects_and_reinits_from_the_clients_copy(serve, after_kill):
    assert after_kill.ws_closed, "the socket to the killed replica should have been closed"
    with connect(ws_url(serve, after_kill.ws_index), open_timeout=30) as ws:
        json.loads(ws.recv(timeout=30))
        # What the page does on reconnect: the image_id first; the image itself once the server says not_found.
        assert send_init(ws, image_id=after_kill.ws_image_id)["code"] == "not_found"
        loaded = send_init(ws, image=base64.b64encode(IMAGES[after_kill.ws_index]).decode())
        assert loaded["type"] == "image_loaded" and loaded["image_id"] == after_kill.ws_image_id
        assert click(ws, 4, 4) == ["point_added", "segmentation_result"]


def test_sigterm_stops_run_local_and_every_ray_process_it_started(serve):
    assert len(serve.session_processes()) >= 5  # driver, GCS, raylet, controller, proxy, replicas ...
    assert serve.stop() == 0
    assert "run_local: stopped" in serve.log_path.read_text(errors="replace")
    assert serve.leftover_processes() == []


def test_ctrl_c_while_the_replicas_start_stops_cleanly_too(tmp_path):
    server = ray_cluster.launch(tmp_path / "run_local.log", _free_port())
    try:
        assert ray_cluster.wait_for_log(server, re.compile(r"Deploying new version|Adding \d+ replica")), \
            server.log_path.read_text(errors="replace")[-2000:]
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=ray_cluster.STOP_TIMEOUT_S) == 0
        log = server.log_path.read_text(errors="replace")
        assert "run_local: stopping (SIGINT)" in log and "run_local: stopped" in log
        assert "run_local: ready" not in log
        assert server.leftover_processes() == []
    finally:
        server.stop()
        server.cleanup()
