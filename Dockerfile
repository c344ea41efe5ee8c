FROM python:3.11-slim
WORKDIR /srv/app
# pg_dump and pg_restore for `flask backup` (docs/operations.md): Debian's client is of the
# compose file's PostgreSQL 15 or newer, and a newer pg_dump reads an older server.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN pip install --no-cache-dir -e .
EXPOSE 8000
