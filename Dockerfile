# The fleetfix image: the CLI, the Celery workers (`fleetfix worker`), the beat (`fleetfix beat`),
# Flower (`celery -A tasks.app:app flower`) and the lab all run from it; docker-compose.yml gives
# each role its command and its own health check (one image, several roles, so the image itself
# declares none: a CLI one-shot has no health to check).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY tasks ./tasks
COPY lab ./lab
COPY playbooks ./playbooks
# Wheels for fleetfix and every dependency, so the runtime stage installs offline and keeps no
# compiler or build cache.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres,redis,flower]'

FROM python:3.11-slim
# A fixed uid/gid: secret files mounted by Compose keep their host owner and mode (bind mounts), so
# the host side makes them owned by 10001 and mode 0600 (deploy/README.md).
RUN groupadd --gid 10001 fleetfix \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin fleetfix
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'fleetfix[postgres,redis,flower]' \
    && rm -rf /wheels
# Mount points owned by the service user: a named volume is created from the image's directory, so
# it starts out writable by fleetfix rather than by root.
RUN mkdir -p /var/lib/fleetfix /etc/fleetfix /lab \
    && chown fleetfix:fleetfix /var/lib/fleetfix /lab \
    && chmod 0700 /var/lib/fleetfix /lab
USER fleetfix
WORKDIR /home/fleetfix
# Logs straight to the container's output; no .pyc files in a read-only layer.
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    FLEETFIX_DATA_DIR=/var/lib/fleetfix FLEETFIX_CONFIG=/etc/fleetfix/fleetfix.toml
# Data (the vault, SQLite if used) lives on a volume and the config is mounted read-only; both are
# declared where the container is run (docker-compose.yml), not here, so that CLI one-shots leave
# no anonymous volumes behind.
ENTRYPOINT ["fleetfix"]
CMD ["--help"]
