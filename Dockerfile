# fleetfix image: the CLI, and later the Celery worker and beat, share it.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY tasks ./tasks
COPY lab ./lab
COPY playbooks ./playbooks
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres,redis]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 fleetfix
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'fleetfix[postgres,redis]' && rm -rf /wheels
USER fleetfix
WORKDIR /home/fleetfix
# Data (vault, master key, SQLite if used) lives on a volume; config is mounted read-only.
ENV FLEETFIX_DATA_DIR=/var/lib/fleetfix FLEETFIX_CONFIG=/etc/fleetfix/fleetfix.toml
ENTRYPOINT ["fleetfix"]
CMD ["--help"]
