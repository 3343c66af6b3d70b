# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run from a slim Debian as a non-root user.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked && cp target/release/pincher /pincher

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/pincher --create-home pincher
COPY --from=build /pincher /usr/local/bin/pincher
USER 10001:10001
WORKDIR /var/lib/pincher
ENV PINCHER_SERVER__HOST=0.0.0.0 \
    PINCHER_SERVER__PORT=8080 \
    PINCHER_DATABASE__URL=sqlite:///var/lib/pincher/pincher.db \
    PINCHER_BACKUPS__DIR=/var/lib/pincher/backups
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/pincher"]
CMD ["serve"]
