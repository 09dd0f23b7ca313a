# syntax=docker/dockerfile:1.6
# The app image: the action server (rasa-sdk), the console (Streamlit) and the one-shot setup job
# (schema migration, documentation ingestion). Build from the repository root:
#   docker build -f docker/Dockerfile.app -t atende-app .
# The command picks the role: `actions` (default), `console`, `setup`.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    KNOWLEDGE_INDEX_DIR=/data/knowledge PYTHONPATH=/app
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 \
    && rm -rf /var/lib/apt/lists/*
# torch first, from the CPU wheel index, so nothing pulls CUDA wheels
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY contract/ contract/
RUN pip install --no-cache-dir ./contract
COPY pyproject.toml ./
COPY actions/ actions/
COPY helpdesk/ helpdesk/
COPY knowledge/ knowledge/
COPY console/ console/
COPY ops/ ops/
RUN pip install --no-cache-dir . && useradd --uid 1001 --gid 0 --home-dir /app atende \
    && mkdir -p /data/knowledge && chown -R 1001:0 /data /app
COPY docker/app-entrypoint.sh /usr/local/bin/atende-app
RUN chmod 0755 /usr/local/bin/atende-app
USER 1001
VOLUME ["/data/knowledge"]
EXPOSE 5055 8501
ENTRYPOINT ["/usr/local/bin/atende-app"]
CMD ["actions"]
