# syntax=docker/dockerfile:1
# The courier-sidecar image is built ON THE APP'S OWN IMAGE: the sidecar
# runs the app's jobs, so it needs exactly the app's Ruby, bundle and code,
# which that image already has. In your app, with gem "courier-sidecar" in
# the Gemfile (bundled into the image like any other gem):
#
#   FROM your-app:latest            # or --build-arg APP_IMAGE=your-app:TAG
#   ENTRYPOINT ["bundle", "exec", "courier-sidecar", "--app", ".", "--bind", "0.0.0.0", "--port", "8088"]
#
# Nothing else is added. The WORKDIR inherited from the app image must be
# the app's root (where config/boot.rb is), as in Rails' own Dockerfiles.
# COURIER_SECRET (or --secret-file) must be set at run time, the same value
# as courier's. Extra flags go in the command: --threads N, --workers N.
#
#   docker build -f docker/sidecar.Dockerfile --build-arg APP_IMAGE=courier-example-app -t courier-example-sidecar .
ARG APP_IMAGE=courier-example-app
FROM ${APP_IMAGE}

# The app image's non-root user (10001 in docker/app.Dockerfile; Rails'
# generated Dockerfile uses 1000:1000).
ARG APP_USER=10001:10001
USER ${APP_USER}
EXPOSE 8088
# /v1/health needs no signature. Ruby is in every Ruby app image; curl may not be.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["ruby", "-rnet/http", "-e", "exit Net::HTTP.get_response(URI('http://127.0.0.1:8088/v1/health')).is_a?(Net::HTTPSuccess)"]
ENTRYPOINT ["bundle", "exec", "courier-sidecar", "--app", ".", "--bind", "0.0.0.0", "--port", "8088"]
CMD ["--threads", "8"]
