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
# The pool deposit keystore (pools.keystore_dir), owned by the runtime user;
# a named volume mounted there starts with this ownership.
RUN mkdir -p -m 0700 /out/deposit-keys

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/seedpay /usr/local/bin/seedpay
COPY configs/production.yaml /etc/seedpay/production.yaml
COPY --from=build --chown=nonroot:nonroot /out/deposit-keys /etc/seedpay/deposit-keys
# HTTP and UDP tracker, admin API (keep 6970 off the public interface),
# transparency page (public.addr in production.yaml).
EXPOSE 6969/tcp 6969/udp 6970/tcp 8080/tcp
USER nonroot
ENTRYPOINT ["/usr/local/bin/seedpay"]
CMD ["serve", "--config", "/etc/seedpay/production.yaml"]
