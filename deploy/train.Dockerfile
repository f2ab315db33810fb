# syntax=docker/dockerfile:1
# The training image for Kubernetes (deploy/k8s/training/): textclf with TensorFlow, for `textclf prep`,
# `textclf train ...` under a TFJob and `textclf export`. Build from the repository root:
#   docker build -f deploy/train.Dockerfile -t textclf-train .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
WORKDIR /src
COPY . .
# the pods run with a read-only root file system: Keras, matplotlib and jieba write their caches under HOME=/tmp
RUN pip install . \
 && textclf --help > /dev/null \
 && useradd --system --uid 10001 --no-create-home textclf
WORKDIR /tmp
USER 10001
CMD ["textclf", "--help"]
