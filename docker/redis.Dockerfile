# syntax=docker/dockerfile:1
# Redis from Debian's package (7.0 on Debian 12), for compose.yaml: the
# official redis image is not reachable on every machine this project runs
# on. With the official image, use `image: redis:7` and the same command.
# AOF is on: jobs (and courier's in-progress lists) survive a restart.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
# The redis user is made first with a fixed id (999, as in the official
# image); the package's postinst keeps an existing system user.
# DL3008 (pin apt versions) ignored: the base image's Debian release fixes them;
# exact revisions would break at every point release.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 redis \
 && useradd --system --uid 999 --gid redis --home-dir /var/lib/redis --shell /usr/sbin/nologin redis \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data \
 && chown 999:999 /data
USER 999:999
WORKDIR /data
EXPOSE 6379
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=5 \
  CMD ["sh", "-c", "redis-cli ping | grep -q PONG"]
# Not published to the host by compose.yaml; inside its network any client may connect.
CMD ["redis-server", "--bind", "0.0.0.0 -::*", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes", "--appendfsync", "everysec"]
