# Shared by scripts/quickstart, scripts/test and scripts/build-image. Source it; don't run it.
# Everything here is idempotent: running it twice changes nothing the second time.

BERTH_PACKAGES=(containerd runc busybox-static tini protobuf-compiler openssh-client curl jq ca-certificates gcc e2fsprogs mount containernetworking-plugins iptables iproute2)
# What only the tests need on top: systemd-analyze and Ansible for the rollout checks.
# Chromium for the web console's browser test.
BERTH_TEST_PACKAGES=(systemd ansible-core ansible-lint docker-registry apache2-utils runsc chromium)
BERTH_IMAGE_NAME="berth.local/base:latest"

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" = 0 ] || die "run as root: Berth drives containerd, cgroups and mounts"
}

# Installs the Debian packages Berth needs (or those given), if any is missing.
ensure_packages() {
  local missing=() want=("$@")
  [ "${#want[@]}" -gt 0 ] || want=("${BERTH_PACKAGES[@]}")
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Makes sure cargo is on PATH (rustup installs it under ~/.cargo/bin).
ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs) first"
}

# Starts containerd in the background unless its socket answers already.
ensure_containerd() {
  local sock=/run/containerd/containerd.sock
  if ctr --address "$sock" version >/dev/null 2>&1; then
    return 0
  fi
  log "starting containerd (log: /var/log/berth-containerd.log)"
  mkdir -p /run/containerd
  nohup containerd >>/var/log/berth-containerd.log 2>&1 &
  for _ in $(seq 1 100); do
    ctr --address "$sock" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "containerd did not come up; see /var/log/berth-containerd.log"
}

# Builds the default image (busybox + a minimal root filesystem) as an OCI layout tarball.
# Usage: build_image OUT.tar
build_image() {
  local out=$1 work rootfs
  work=$(mktemp -d)
  rootfs=$work/rootfs
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,home,proc,sys,dev,run}
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  chmod 700 "$rootfs/root"
  cp /bin/busybox "$rootfs/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  printf 'berth\n' >"$rootfs/etc/hostname"
  printf 'NAME="Berth base"\nID=berth\n' >"$rootfs/etc/os-release"

  local layout=$work/layout
  mkdir -p "$layout/blobs/sha256"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$rootfs" -cf "$work/layer.tar" .
  local layer_sha layer_size
  layer_sha=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$work/layer.tar")
  mv "$work/layer.tar" "$layout/blobs/sha256/$layer_sha"

  local arch
  case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOME=/root"],"WorkingDir":"/root"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"berth scripts/lib.sh build_image"}]}' \
    "$arch" "$layer_sha" >"$work/config.json"
  local config_sha config_size
  config_sha=$(sha256sum "$work/config.json" | cut -d' ' -f1)
  config_size=$(stat -c %s "$work/config.json")
  mv "$work/config.json" "$layout/blobs/sha256/$config_sha"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_sha" "$config_size" "$layer_sha" "$layer_size" >"$work/manifest.json"
  local manifest_sha manifest_size
  manifest_sha=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
  manifest_size=$(stat -c %s "$work/manifest.json")
  mv "$work/manifest.json" "$layout/blobs/sha256/$manifest_sha"

  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest_sha" "$manifest_size" "$arch" "$BERTH_IMAGE_NAME" >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  mkdir -p "$(dirname "$out")"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$layout" -cf "$out" .
  rm -rf "$work"
}

# Imports (and unpacks) an image tarball into a containerd namespace.
# Usage: import_image NAMESPACE FILE.tar
# Builds the statically linked SFTP server containers get at /.berth/sftp-server (it runs
# inside them, where the host's shared libraries are not) and prints its path.
# Node.js and npm for the web console's build (the machine's own, else Debian's).
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    ensure_packages nodejs npm
  fi
}

# Builds the web console (coordinator/console, npm with its lockfile, TypeScript + Vite) into
# coordinator/console/dist and prints that directory. `npm ci` runs when the lockfile changed.
build_console() {
  ensure_node
  local dir=$PWD/coordinator/console
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
  (cd "$dir" && npm run --silent build) >&2
  [ -f "$dir/dist/index.html" ] || die "the console build wrote no $dir/dist/index.html"
  echo "$dir/dist"
}

build_sftp_server() {
  local triple out=target/static
  triple=$(rustc -vV | sed -n 's/^host: //p')
  RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --locked -q --release \
    -p berth-sftp --target "$triple" >&2
  mkdir -p "$out"
  cp "target/$triple/release/berth-sftp-server" "$out/berth-sftp-server.new"
  mv "$out/berth-sftp-server.new" "$out/berth-sftp-server"
  if readelf -l "$out/berth-sftp-server" | grep -q 'program interpreter'; then
    die "$out/berth-sftp-server is not statically linked"
  fi
  echo "$PWD/$out/berth-sftp-server"
}

import_image() {
  ctr -n "$1" images import --snapshotter overlayfs "$2" >/dev/null
}

# A throw-away PostgreSQL cluster (Debian's package) in DIR, for the tests and
# `quickstart --ha`: initdb'd once, run as the unprivileged user berth-pg (PostgreSQL refuses
# root), listening on 127.0.0.1:PORT only, role `berth`, trust authentication (loopback only,
# never for a real installation). Prints the admin address. Usage: start_postgres DIR PORT
# (a busy PORT: the next free one; a cluster already running keeps its port)
start_postgres() {
  local dir=$1 port=$2 bin
  ensure_packages postgresql postgresql-client
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$bin/pg_ctl" ] || die "PostgreSQL's pg_ctl not found under /usr/lib/postgresql"
  id -u berth-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin berth-pg
  mkdir -p "$dir"
  chown berth-pg "$dir"
  chmod 700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    runuser -u berth-pg -- "$bin/initdb" -D "$dir/data" -U berth --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
      || die "initdb failed; see $dir/initdb.log"
  fi
  if ! runuser -u berth-pg -- "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    # Another server on the port (another checkout's): the next free one.
    while ss -Hltn "sport = :$port" | grep -q .; do port=$((port + 1)); done
    log "starting PostgreSQL in $dir on 127.0.0.1:$port (log: $dir/postgres.log)"
    runuser -u berth-pg -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null \
      || die "PostgreSQL did not start; see $dir/postgres.log"
  fi
  # A cluster already running keeps the port it was started with.
  port=$(sed -n 4p "$dir/data/postmaster.pid")
  echo "host=127.0.0.1 port=$port user=berth dbname=postgres"
}

# Stops what start_postgres started in DIR (fast shutdown: sessions are cut, data kept).
stop_postgres() {
  local dir=$1 bin
  [ -f "$dir/data/postmaster.pid" ] || return 0
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  runuser -u berth-pg -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}
