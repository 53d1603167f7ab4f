# syntax=docker/dockerfile:1
# Multi-stage build: a CGO-free binary, the pinned llama.cpp CPU libraries
# for the embedded engine, on a slim Debian base, running as a non-root
# user. Mount your own config (and models) over the defaults:
#   docker build -t switchyard .
#   docker run -p 8080:8080 -e OPENAI_API_KEY \
#     -v "$PWD/config.yaml:/etc/switchyard/config.yaml:ro" \
#     -v "$PWD/models:/models:ro" switchyard
#
# The binary is built without cgo but is not static: the llama.cpp binding
# (purego) needs the dynamic loader, glibc, libstdc++ and libffi8, hence
# Debian slim rather than distroless/static. For GPUs, replace
# /opt/switchyard/llama with a llama.cpp build of the same version that has
# libggml-cuda.so (docs/localengine.md).

FROM node:20-bookworm-slim AS llama
COPY scripts/fetch-llama.sh /fetch-llama.sh
RUN bash /fetch-llama.sh /opt/switchyard/llama

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/switchyard ./cmd/switchyard \
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
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["serve", "-config", "/etc/switchyard/config.yaml"]
