# syntax=docker/dockerfile:1
# ravan-watch: build with the Rust toolchain, run from a slim Debian image as a non-root user.
# TLS is rustls (no OpenSSL): the binary needs only the C runtime, plus CA certificates to
# trust api.ravan.ai, Slack and Discord.
#
#   docker build -t ravan-watch .
#   docker run -d --name ravan-watch --env-file .env -p 8080:8080 -v ravan-watch:/data ravan-watch

# Dependencies are built in a layer of their own (cargo-chef): a change to the sources does not
# rebuild them. `prepare` reduces the manifests to a recipe; `cook` builds only what it names.
FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
# The image's binary is built with fat LTO and one codegen unit: a smaller binary and less
# resident memory (docs/benchmarks.md), for a build several times longer; local builds and the
# benchmarks keep the quicker release profile.
ENV CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --bin ravan-watch --recipe-path recipe.json
# The migrations and the status page's templates are compiled into the binary.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY migrations ./migrations
COPY templates ./templates
COPY src ./src
RUN cargo build --release --locked --bin ravan-watch

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /data ravan
COPY --from=build /src/target/release/ravan-watch /usr/local/bin/ravan-watch
USER 10001:10001
WORKDIR /data
ENV LOG_FORMAT=json \
    DATABASE_URL=sqlite:///data/ravan-watch.db \
    LISTEN_ADDR=0.0.0.0:8080
# Watched agents, their state and undelivered alerts: keep this volume across upgrades.
VOLUME /data
EXPOSE 8080
# GET /healthz on the local listener; the binary needs no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["ravan-watch", "healthcheck"]
ENTRYPOINT ["ravan-watch"]
CMD ["serve"]
