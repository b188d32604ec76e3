"""Loading the model with retries: transient failures back off and retry, permanent ones fail at once.

A hub that times out, a reset connection or a 503 from the CDN is worth retrying: the next attempt often
works, and a server that gave up would stay down until someone restarts it. A gated repository without a
token (401/403), a repository or file that does not exist, or a local directory that is missing will not fix
themselves: those fail on the first attempt with the hint that says how to fix them.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..config import Settings

T = TypeVar("T")
MAX_DELAY_S = 60.0
TRANSIENT_HTTP_STATUS = {408, 425, 429, 500, 502, 503, 504}
# httpx (and the hub's vendored copy) name their network errors this way; matched by name so both count.
TRANSPORT_ERROR_NAMES = {"TransportError", "NetworkError", "TimeoutException", "ConnectError", "ReadTimeout"}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from (transformers wraps hub errors in OSError)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        error = stack.pop(0)
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        stack += [error.__cause__, error.__context__]


def _verdict(error: BaseException) -> bool | None:
    """True: transient, False: permanent, None: this link of the chain does not say."""
    from huggingface_hub import errors as hub

    if isinstance(error, (hub.GatedRepoError, hub.RepositoryNotFoundError, hub.RevisionNotFoundError)):
        return False
    if isinstance(error, hub.LocalEntryNotFoundError):  # "could not reach the hub and nothing is cached"
        return os.environ.get("HF_HUB_OFFLINE", "").lower() not in ("1", "true", "yes", "on")
    if isinstance(error, hub.HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        return status is None or status in TRANSIENT_HTTP_STATUS
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if any(cls.__name__ in TRANSPORT_ERROR_NAMES for cls in type(error).__mro__):
        return True
    if isinstance(error, FileNotFoundError):
        return False
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether a failed load is worth retrying; unknown errors are permanent (fail fast, say why)."""
    for error in _chain(exc):
        verdict = _verdict(error)
        if verdict is not None:
            return verdict
    return False


def backoff_delay(attempt: int, initial_s: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): doubling, capped at a minute."""
    return min(initial_s * 2 ** (attempt - 1), MAX_DELAY_S)


def load_with_retries(load: Callable[[], T], retries: int, initial_backoff_s: float,
                      on_retry: Callable[[int, BaseException, float], None], stop: threading.Event) -> T:
    """Call `load` until it succeeds, retrying transient failures up to `retries` times with backoff.

    `on_retry(attempt, error, delay)` reports each retry (health shows it); `stop` interrupts the wait
    (shutdown). The last error is raised when it is permanent, retries are used up, or stop is set.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return load()
        except Exception as exc:
            if attempt > retries or stop.is_set() or not is_transient(exc):
                raise
            delay = backoff_delay(attempt, initial_backoff_s)
            on_retry(attempt, exc, delay)
            if stop.wait(delay):
                raise


def quiet_progress_bars() -> None:
    """JSON logs promise one object per line: transformers' tqdm bars on stderr would break that."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


TOKEN_HINT = " -- request access at https://huggingface.co/facebook/sam3 and set HF_TOKEN"
NETWORK_HINT = (" -- check network access, or point SAM3_MODEL at a local checkpoint directory "
                "(or use SAM3_MODEL=dev-tiny to try the server offline)")


def describe(exc: BaseException) -> str:
    """The failure and the usual fix for the usual causes (gated repo, no network), for /health."""
    reason = f"{type(exc).__name__}: {exc}"
    lowered = " ".join(str(error) for error in _chain(exc)).lower()
    if _needs_token(exc) or any(word in lowered for word in ("401", "403", "gated", "token", "unauthorized")):
        return reason + TOKEN_HINT
    if is_transient(exc) or any(word in lowered for word in ("connect", "offline", "resolve", "not a local folder",
                                                             "does not appear")):
        return reason + NETWORK_HINT
    return reason


def _needs_token(exc: BaseException) -> bool:
    from huggingface_hub import errors as hub

    for error in _chain(exc):
        status = getattr(getattr(error, "response", None), "status_code", None)
        if isinstance(error, hub.GatedRepoError) or (isinstance(error, hub.HfHubHTTPError) and status in (401, 403)):
            return True
    return False


def load_runtime(settings: Settings):
    """Resolve SAM3_MODEL (dev-tiny, directory or hub id) and load it on the chosen device and precision."""
    from . import precision
    from .devmodel import ensure_dev_checkpoint, is_random_checkpoint
    from .runtime import Sam3Runtime, configure_torch, pick_device

    device = pick_device(settings.device)
    configure_torch(device, settings.torch_num_threads)
    chosen = precision.resolve(settings.precision, device)
    log.info("precision %s on %s: %s", chosen.name, device.type, chosen.reason)
    source = str(ensure_dev_checkpoint(settings.cache_dir)) if settings.is_dev_model else settings.model
    runtime = Sam3Runtime.from_pretrained(source, device, token=settings.hf_token, precision=chosen)
    if settings.warmup:
        from .warmup import warm_up

        log.info("warm-up: one blank image through the backbone, the text head and the prompt decoder in %.1f s",
                 warm_up(runtime))
    return runtime, device.type, settings.is_dev_model or is_random_checkpoint(source)
