# syntax=docker/dockerfile:1
# The example Rails app's image (examples/rails72_app: Ruby 3.3, Rails 7.2,
# Sidekiq 7.3, Puma 6, Rack 3, all from Debian 13's packages). It is what a
# team's own app image would be: Ruby, the bundle, the app. Its default
# command is the web process (Puma serving config.ru: the Sidekiq Web UI at
# /sidekiq, POST /enqueue, GET /stats, GET /up); docker/sidecar.Dockerfile
# builds the executor sidecar FROM this image.
#
#   docker build -f docker/app.Dockerfile -t courier-example-app .
#
# bundle install --local: every gem of Gemfile.lock comes from Debian's
# packages, nothing is downloaded. The Gemfile names the sidecar as a path
# gem (../../sidecar), and rails72_app links many files into ../rails_app,
# so the image keeps the checkout's layout under /app.
ARG DEBIAN_IMAGE=debian:trixie-slim
FROM ${DEBIAN_IMAGE}

# DL3008 (pin apt versions) ignored: the base image's Debian release fixes them;
# exact revisions would break at every point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ruby ruby-bundler ruby-rails ruby-sidekiq puma ruby-redis-client ruby-connection-pool \
      ruby-rack ruby-rack-session ruby-rackup ruby-rack-test ruby-sqlite3 ruby-minitest \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 app \
 && useradd --no-log-init --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data

WORKDIR /app
COPY sidecar/ sidecar/
COPY examples/ examples/
WORKDIR /app/examples/rails72_app
# Frozen: Gemfile.lock must match, and nothing may be fetched.
ENV RAILS_ENV=production \
    BUNDLE_FROZEN=true \
    DATABASE_PATH=/data/app.sqlite3 \
    PORT=3000
# (docker/app.Dockerfile.dockerignore keeps local databases and logs out of
# the context; the rm is for builders that do not read it.)
RUN rm -rf db/*.sqlite3* log tmp ../rails_app/db/*.sqlite3* ../rails_app/log ../rails_app/tmp \
 && BUNDLE_SILENCE_ROOT_WARNING=1 bundle install --local --quiet \
 && mkdir -p log tmp \
 && chown app:app log tmp

USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["ruby", "-rnet/http", "-e", "exit Net::HTTP.get_response(URI(\"http://127.0.0.1:#{ENV.fetch('PORT', '3000')}/up\")).is_a?(Net::HTTPSuccess)"]
# bin/setup_db creates the SQLite database (DATABASE_PATH) if it is missing.
CMD ["sh", "-c", "bundle exec ruby bin/setup_db && exec bundle exec puma --bind \"tcp://0.0.0.0:${PORT}\" config.ru"]
