# syntax=docker/dockerfile:1
# Build: docker build -t seedpay .
# Run:   docker compose -f deploy/docker-compose.yml up   (tracker + Redis with AOF)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
# go.mod replaces github.com/anacrolix/go-utp (not served by the module
# proxy) with the stub in third_party/: it must be there before downloading.
COPY third_party ./third_party
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/seedpay ./cmd/seedpay

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/seedpay /usr/local/bin/seedpay
COPY configs/production.yaml /etc/seedpay/production.yaml
# HTTP and UDP tracker, admin API (keep 6970 off the public interface).
EXPOSE 6969/tcp 6969/udp 6970/tcp
USER nonroot
ENTRYPOINT ["/usr/local/bin/seedpay"]
CMD ["serve", "--config", "/etc/seedpay/production.yaml"]
