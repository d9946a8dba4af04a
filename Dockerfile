# Multi-stage build of the `jangteo` binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin jangteo

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/jangteo jangteo \
    && mkdir -p /var/lib/jangteo && chown jangteo /var/lib/jangteo
COPY --from=build /src/target/release/jangteo /usr/local/bin/jangteo
USER jangteo
WORKDIR /var/lib/jangteo
ENV JANGTEO_LISTEN=0.0.0.0:8080 \
    JANGTEO_DATA_DIR=/var/lib/jangteo/data
EXPOSE 8080
ENTRYPOINT ["jangteo"]
CMD ["serve"]
