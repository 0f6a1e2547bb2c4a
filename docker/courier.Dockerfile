# syntax=docker/dockerfile:1
# courier: the Swift dispatcher, built in a Swift toolchain image and shipped
# on debian:bookworm-slim with only its run-time libraries (hiredis 0.14,
# libcurl, zlib; the Swift runtime is linked in with --static-swift-stdlib).
#
#   docker build -f docker/courier.Dockerfile -t courier .
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 -e COURIER_SECRET=… \
#     -e COURIER_EXECUTOR_URL=http://sidecar:8088 courier -c 20 -q default
#
# SWIFT_IMAGE is the build stage's base, the official image by default. Where
# no registry is reachable, build an equivalent and pass it, e.g.
# --build-arg SWIFT_IMAGE=localhost/courier-swift:6.3-bookworm (what
# tests/containers/run makes from the machine's toolchain). Any Swift 6
# toolchain image on Debian 12 works; the run stage must be the same Debian
# release as the build stage (hiredis 0.14 is Debian 12's).
#
# Configuration is the usual flags / environment variables (`courier --help`,
# docs/configuration.md). The ops port (/health, /ready, /metrics) is 7433;
# move it with COURIER_OPS_PORT (the HEALTHCHECK reads it), not --ops-port.
# courier handles SIGTERM itself (quiet, drain up to -t seconds, push back,
# exit 0), also as PID 1, so no init is needed; give the orchestrator a stop
# timeout longer than -t + 2 s.
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
# The C libraries the package links (the official image has the toolchain,
# not these).
# DL3008 (pin apt versions) ignored: the base image's Debian release fixes them;
# exact revisions would break at every point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis-dev libcurl4-openssl-dev libssl-dev zlib1g-dev libyaml-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Package.swift names the test target's folder, so Tests/ comes along (it is
# not compiled: only the courier product is built).
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
# The cache mount keeps .build (dependency checkouts and objects) between
# builds of this Dockerfile: a change in Sources/ recompiles incrementally.
RUN --mount=type=cache,target=/src/.build,id=courier-swift-release \
    swift build -c release --static-swift-stdlib --product courier \
 && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/courier" /out/courier \
 && strip /out/courier \
 && /out/courier --version

FROM ${RUNTIME_IMAGE} AS runtime
# libhiredis0.14 (Debian 12's soname), libcurl4 (+ its libssl3, zlib1g), libyaml-0-2 (sidekiq.yml);
# curl only for the HEALTHCHECK; ca-certificates for an https executor URL.
# DL3008 (pin apt versions) ignored: the base image's Debian release fixes them;
# exact revisions would break at every point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis0.14 libcurl4 zlib1g libyaml-0-2 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 courier \
 && useradd --no-log-init --uid 10001 --gid courier --home-dir /nonexistent --shell /usr/sbin/nologin courier
COPY --from=build /out/courier /usr/local/bin/courier
USER 10001:10001
ENV COURIER_OPS_PORT=7433
EXPOSE 7433
# Liveness: /health answers 200 while the process runs (/ready is for
# readiness and alerting: it is 503 while Redis is unreachable).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["sh", "-c", "curl -fsS -o /dev/null \"http://127.0.0.1:${COURIER_OPS_PORT}/health\""]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/courier"]
