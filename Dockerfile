# rencfs in a container:
#   docker build -t rencfs .
#   docker run -it --device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor:unconfined rencfs /bin/sh
#   # then, inside: rencfs mount -m fsmnt -d fsdata
# The build stage runs the Makefile's own build target.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN make build VERSION=$VERSION

FROM debian:bookworm-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends fuse3 \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /src/rencfs /usr/local/bin/rencfs
WORKDIR /root
CMD ["/bin/sh"]
