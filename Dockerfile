# syntax=docker/dockerfile:1
# Image of the dispatcher service: `docker build -t prefect-push-dispatcher .`
#
# Run it with the configuration mounted (secrets come from the environment through
# ${VAR} references in the file, never from the image):
#   docker run -v $PWD/dispatcher.yaml:/etc/dispatcher/dispatcher.yaml:ro \
#     -e PREFECT_API_KEY -p 8080:8080 prefect-push-dispatcher
# For /healthz and /metrics to be reachable from outside the container, set
# `service: {host: 0.0.0.0}` in dispatcher.yaml (the default is 127.0.0.1).

ARG PYTHON_IMAGE=python:3.12-slim

# ---- build: a wheel of the project, installed with its extras into a venv ----------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what .dockerignore lets through: pyproject.toml, README/LICENSE, constraints/, dispatcher/, providers/.
COPY . .

# constraints/test-server.txt pins the Prefect (and FastAPI/SQLAlchemy) versions the tests run against.
RUN python -m venv /opt/venv \
 && python -m pip wheel --no-deps --wheel-dir /tmp/wheels . \
 && set -- /tmp/wheels/*.whl \
 && /opt/venv/bin/pip install -c constraints/test-server.txt "$1[aws,postgres]" \
 && /opt/venv/bin/dispatcher --help > /dev/null

# ---- runtime: the venv, a non-root user, nothing else ---------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    DISPATCHER_STATE_DIR=/var/lib/dispatcher \
    DISPATCHER_HEALTHCHECK_URL=http://127.0.0.1:8080/livez

RUN groupadd --system --gid 10001 dispatcher \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/dispatcher --create-home \
      --shell /usr/sbin/nologin dispatcher \
 && mkdir -p /etc/dispatcher /var/lib/dispatcher \
 && chown 10001:10001 /var/lib/dispatcher

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/dispatcher

EXPOSE 8080

# slim images have no curl: urllib fails (exit 1) on connection errors and HTTP >= 400.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['DISPATCHER_HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["dispatcher", "serve"]
CMD ["--config", "/etc/dispatcher/dispatcher.yaml"]
