# syntax=docker/dockerfile:1
# Multi-stage build: a static, CGO-free binary on a distroless base that
# runs as a non-root user. Mount your own config over the default:
#   docker build -t switchyard .
#   docker run -p 8080:8080 -e OPENAI_API_KEY \
#     -v "$PWD/config.yaml:/etc/switchyard/config.yaml:ro" switchyard

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/switchyard ./cmd/switchyard \
 && /out/switchyard version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchyard /usr/local/bin/switchyard
COPY config.yaml /etc/switchyard/config.yaml
# Listen on every interface inside the container (config.yaml reads this).
ENV SWITCHYARD_LISTEN=:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["serve", "-config", "/etc/switchyard/config.yaml"]
