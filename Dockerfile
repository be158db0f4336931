# syntax=docker/dockerfile:1
# Multi-stage: build with the Rust toolchain, run from a slim image as a non-root user.
# TLS is rustls (no OpenSSL); the runtime image only needs CA certificates.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /data ravan
COPY --from=build /src/target/release/ravan-watch /usr/local/bin/ravan-watch
USER ravan
WORKDIR /data
ENV LOG_FORMAT=json \
    DATABASE_URL=sqlite:///data/ravan-watch.db \
    LISTEN_ADDR=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["ravan-watch"]
CMD ["serve"]
