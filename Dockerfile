# One image for every stream-app service of docker-compose.yml (init, workers, sink, producer).
FROM python:3.11-slim

# LightGBM's wheel links against OpenMP at run time
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# the build context is the repository less what .dockerignore leaves out (tests, venv, caches)
COPY . /app
RUN pip install /app

# schemas/ is data beside the packages, not inside them: point the settings at this copy.
# The model registry lives on a volume shared by the init service and the workers.
ENV STREAM_APP_SCHEMAS_DIR=/app/schemas \
    STREAM_APP_MODEL_DIR=/data/models

RUN useradd --create-home --uid 10001 stream \
    && mkdir -p /data/models \
    && chown -R stream /data /app/schemas
USER stream

CMD ["stream-app", "--help"]
