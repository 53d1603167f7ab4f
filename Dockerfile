# syntax=docker/dockerfile:1
# Multi-stage build: a CGO-free binary, the pinned llama.cpp CPU libraries
# for the embedded engine, on a slim Debian base, running as a non-root
# user. Mount your own config (and models) over the defaults:
#   docker build --build-arg VERSION=v1.2.3 --build-arg REVISION=$(git rev-parse HEAD) -t switchyard .
#   docker run -p 8080:8080 -e OPENAI_API_KEY \
#     -v "$PWD/config.yaml:/etc/switchyard/config.yaml:ro" \
#     -v "$PWD/models:/models:ro" switchyard
# The shipped config serves `demo` from /models/demo.gguf
# (SWITCHYARD_DEMO_MODEL): mount any GGUF there, e.g.
#   -v "$PWD/qwen2.5-0.5b-instruct-q4_k_m.gguf:/models/demo.gguf:ro"
# Without one the gateway still starts and /readyz says why demo is not
# loaded. Release builds, the HEALTHCHECK and the image size: docs/release.md.
#
# The binary is built without cgo but is not static: the llama.cpp binding
# (purego) needs the dynamic loader, glibc, libstdc++ and libffi8, hence
# Debian slim rather than distroless/static. For GPUs, replace
# /opt/switchyard/llama with a llama.cpp build of the same version that has
# libggml-cuda.so (docs/localengine.md).

FROM node:20-bookworm-slim AS llama
COPY scripts/fetch-llama.sh /fetch-llama.sh
RUN bash /fetch-llama.sh /opt/switchyard/llama

# The toolchain is pinned to the patch release: the Go version is part of
# what makes the binary bit-for-bit reproducible (docs/release.md).
# scripts/check-release.sh builds with exactly these flags and checks that
# two builds give the same bytes.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -buildid= -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/switchyard ./cmd/switchyard \
 && sha256sum /out/switchyard \
 && /out/switchyard version

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libffi8 libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=llama /opt/switchyard/llama /opt/switchyard/llama
COPY --from=build /out/switchyard /usr/local/bin/switchyard
COPY config.yaml /etc/switchyard/config.yaml
# Listen on every interface inside the container (config.yaml reads this);
# the engine finds its libraries here.
ENV SWITCHYARD_LISTEN=:8080 \
    SWITCHYARD_LLAMA_LIB=/opt/switchyard/llama \
    SWITCHYARD_DEMO_MODEL=/models/demo.gguf
EXPOSE 8080
USER nonroot:nonroot
# No curl in the image: the binary checks itself. It GETs /healthz on
# $SWITCHYARD_LISTEN (":8080" -> http://127.0.0.1:8080/healthz); a config
# that listens elsewhere overrides this with --health-cmd or its own
# HEALTHCHECK (switchyard healthcheck -url URL).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/switchyard","healthcheck"]
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["serve", "-config", "/etc/switchyard/config.yaml"]
