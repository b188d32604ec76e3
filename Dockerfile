# sam3-api: FastAPI server for SAM 3, CUDA-capable.
#
#   docker build -t sam3-api .                    (podman: podman build --format docker, or the HEALTHCHECK is lost)
#   docker run --gpus all -p 8000:8000 -e HF_TOKEN -v sam3-data:/data sam3-api
#   (or: docker compose up --build; without an NVIDIA GPU:
#    docker compose -f docker-compose.yml -f docker-compose.cpu.yml up --build)
#   A bind mount instead of the volume: the host directory must belong to uid 10001 (sudo chown -R 10001:10001
#   ./data); otherwise the server exits at start with a message that says so (sam3_api/writable_dirs.py).
#
# Base image: python:3.11-slim(-bookworm), not nvidia/cuda. torch 2.14.1 from PyPI is a CUDA 13.0 build that brings its
# own CUDA runtime, cuBLAS, cuDNN, NCCL ... as nvidia-* / cuda-toolkit wheels in site-packages, so a CUDA base
# image would only add a second, unused copy of those libraries (several GB). The host needs only the NVIDIA
# driver (>= 580, for CUDA 13.0) and the NVIDIA Container Toolkit, which mounts the driver in at `--gpus`.
# Without a GPU the same image runs on CPU (SAM3_DEVICE=auto picks it).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000
# Model weights (the Hugging Face cache) and the generated dev-tiny checkpoint live on the /data volume, so
# they survive container re-creation and are downloaded once.
ENV HF_HOME=/data/hf \
    SAM3_CACHE_DIR=/data/sam3-api \
    SAM3_DATA_DIR=/data/jobs
# Read by the NVIDIA Container Toolkit: expose the GPUs and the driver's compute libraries (and nvidia-smi).
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Non-root user; /data is created and owned by it before VOLUME so a new named volume inherits the ownership.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data/hf /data/sam3-api /data/jobs \
    && chown -R app:app /data

WORKDIR /app

# Dependencies first, so code changes do not re-download torch. pip's wheel cache is a build cache mount
# (BuildKit, podman/buildah): a changed requirements.txt re-downloads only what changed, and the cache never
# lands in the image.
COPY requirements.txt ./
RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt
# label-studio-sdk for its brush converter only; its own pins clash with ours (see the file).
COPY requirements-no-deps.txt ./
RUN --mount=type=cache,target=/root/.cache/pip pip install --no-deps -r requirements-no-deps.txt

COPY app.py ./
COPY sam3_api/ ./sam3_api/
COPY static/ ./static/

USER app
VOLUME ["/data"]
EXPOSE 8000

# Healthy when GET /health/ready answers 200: the model is loaded and its queue has room (503 otherwise, with the
# reason). urllib, so no curl in the image; urlopen raises on a 503. The long start period covers the first
# start's download of the weights (a few GB). /health/live (the process serves) is there for liveness probes.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10m --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '8000'), timeout=8)"]

# SIGTERM: no new connections, in-flight requests get SAM3_SHUTDOWN_GRACE_S (30 s), then the process exits.
# `docker stop` must wait longer than that before its SIGKILL: docker stop -t 40 (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["python", "app.py"]
