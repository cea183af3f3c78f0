# NXS gateway image: `docker build -t nxs .` (add `--build-arg EXTRAS=emulator` for an
# image that can also run `nxs emulator`). Dependencies are installed from the runtime lock
# (scripts/lock), the package from this checkout; the final stage has no compiler, no pip
# cache and runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements/runtime.lock requirements/runtime.lock
RUN python -m venv /opt/nxs \
    && /opt/nxs/bin/pip install --require-virtualenv -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY src ./src
ARG EXTRAS=""
RUN /opt/nxs/bin/pip install --require-virtualenv --no-deps . \
    && if [ -n "$EXTRAS" ]; then /opt/nxs/bin/pip install --require-virtualenv ".[$EXTRAS]"; fi

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/nxs --create-home nxs
COPY --from=build /opt/nxs /opt/nxs
ENV PATH=/opt/nxs/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NXS_DATABASE_URL=sqlite:////var/lib/nxs/nxs.db
WORKDIR /var/lib/nxs
USER 10001:10001
VOLUME ["/var/lib/nxs"]
# 8000: customers; 9090: /metrics, /healthz and /readyz only (keep it off the internet)
EXPOSE 8000 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/readyz', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["nxs"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--metrics-host", "0.0.0.0", "--metrics-port", "9090"]
