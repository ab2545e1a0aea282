# The cluster payload image for users with Docker: the corpusbridge library only (no Airflow), installed from the same
# hash lock as `make image` (locks/compute.txt) on the same base (Debian 12 and its python3.11). Build from the repo root:
#   docker build -f docker/compute.Dockerfile -t corpusbridge-compute .
#   apptainer build corpusbridge-compute.sif docker-daemon://corpusbridge-compute:latest
# The model package is a no-deps line of the lock (its metadata would pull torch, which the numpy runtime never uses).
# Bytecode is compiled in the image: a .sif is read-only, so an array task could not cache it.
FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

FROM debian:bookworm-slim AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1
WORKDIR /src
COPY locks/compute.txt ./locks/
RUN uv venv --python /usr/bin/python3.11 /opt/venv \
 && uv pip sync --require-hashes --compile-bytecode --python /opt/venv/bin/python locks/compute.txt
COPY pyproject.toml README.md ./
COPY include ./include
RUN uv pip install --no-deps --compile-bytecode --python /opt/venv/bin/python .

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
LABEL org.opencontainers.image.title="corpusbridge-compute" \
      org.opencontainers.image.description="corpusbridge payload (python -m corpusbridge.extract) from locks/compute.txt"
# Each SLURM array index runs e.g.: python -m corpusbridge.extract --manifest M --index $SLURM_ARRAY_TASK_ID ...
ENTRYPOINT ["python", "-m", "corpusbridge.extract"]
