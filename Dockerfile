# floaty container image: the static floaty binary, its wrappers, a shell
# for them (busybox-static) and Debian's CA bundle, on nothing else (FROM
# scratch). The entrypoint is floaty-docker, which puts floaty's JSON log
# on PID 1's stdout/stderr (what `docker logs` shows).
#
#   docker build -t floaty .
#   docker run -v /etc/keepalived:/etc/keepalived:ro -v /run/keepalived:/run/keepalived floaty
#
# By default it runs floaty's FIFO daemon on /run/keepalived/floaty.fifo
# (keepalived: `vrrp_notify_fifo /run/keepalived/floaty.fifo`). See README.
#
# CI builds the same image without a registry (packaging/build-image:
# buildah from scratch, the same packaging/image-rootfs layout, the same
# ENV, ENTRYPOINT and CMD) and runs it (packaging/test-image, which also
# checks that this file's final stage is still just that).

FROM rust:1.89-slim-bookworm AS build
# musl-tools for the static build, binutils for strip; busybox-static and
# ca-certificates are copied into the image by packaging/image-rootfs.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools binutils busybox-static ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
# Build as an unprivileged user: nothing in the build needs root.
RUN useradd --create-home --uid 10001 builder
USER 10001
WORKDIR /home/builder/floaty
COPY --chown=10001:10001 . .
RUN sh packaging/build-static \
    && sh packaging/image-rootfs /home/builder/rootfs target/x86_64-unknown-linux-musl/release/floaty.stripped /

FROM scratch
COPY --from=build --chown=0:0 /home/builder/rootfs/ /
ENV PATH=/usr/bin:/bin
# floaty signals refreshers, takes flock()s in /run/floaty and reads the
# root-owned 0600 FIFO keepalived creates: it runs as root, like keepalived.
ENTRYPOINT ["/usr/share/floaty/floaty-docker"]
CMD ["--fifo", "/run/keepalived/floaty.fifo"]
