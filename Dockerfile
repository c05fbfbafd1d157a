# The image every training-pipeline step runs in on a cluster (pipelines/components.py IMAGE),
# and the gateway's base. Built by `make image`; the tag is the package version.
FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/shipyard
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock && pip install --no-deps nvidia-pytriton==0.7.0
COPY pyproject.toml README.md ./
COPY platform ./platform
COPY pipelines ./pipelines
COPY serving ./serving
COPY feature_repo ./feature_repo
RUN pip install --no-deps . && useradd --uid 10001 --no-create-home shipyard
ENV SHIPYARD_FEATURE_REPO=/opt/shipyard/feature_repo
USER 10001
