# Outcry in its own image: the web app, the worker and beat all run from it.
# Python 3.11 on Debian 12 (bookworm), the Debian the suite runs on: the fonts below are
# the packages the PDF tests render with, not whatever a newer Debian ships.
FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 outcry
# Fonts PDFs fall back on for what PT Serif lacks: Greek, Hebrew, symbols (DejaVu),
# emoji (Symbola), Chinese, Japanese and Korean (Droid Sans Fallback).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-symbola fonts-droid-fallback \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md alembic.ini babel.cfg ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
COPY templates ./templates
COPY demo ./demo
# The versions the test suite ran with: constraints.txt, written by `bash scripts/lock`.
RUN pip install --no-cache-dir -c constraints.txt . && rm -rf /app/*
# Where letters and fax PDFs go without SMTP or a fax gateway (OUTCRY_OUTBOX_DIR in
# docker-compose.yml): a volume mounted here starts out owned by the outcry user.
RUN mkdir -p /data/outbox && chown outcry:outcry /data/outbox
USER outcry
WORKDIR /home/outcry
EXPOSE 8000
CMD ["outcry", "serve", "--host", "0.0.0.0", "--port", "8000"]
