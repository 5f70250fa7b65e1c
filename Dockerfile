# Multi-stage build of the rtgraph binary. Used by docker-compose.yml.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/rtgraph ./cmd/rtgraph

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 rtgraph && mkdir -p /var/lib/rtgraph && chown rtgraph /var/lib/rtgraph
COPY --from=build /out/rtgraph /usr/local/bin/rtgraph
USER rtgraph
ENV RTGRAPH_EMBEDDED_DIR=/var/lib/rtgraph
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/rtgraph"]
CMD ["serve"]
