#!/usr/bin/env bash
# Build (once per machine) a Debian root holding another SLURM release, for hpc-sandbox.sh's `--slurm VERSION`.
#
#   scripts/hpc-sandbox-root.sh VERSION    print the root's path; build it first when it is missing
#
# VERSION picks the Debian suite that ships it: 24.11 -> trixie (Debian 13). The root is built by mmdebstrap as
# root into HPC_SANDBOX_ROOTS (default /var/cache/corpusbridge/slurm-roots) and reused as is afterwards; a
# half-built root is never used (built under a temporary name, renamed when complete). Remove the folder to rebuild.
set -euo pipefail

ROOTS=${HPC_SANDBOX_ROOTS:-/var/cache/corpusbridge/slurm-roots}
MIRROR=${HPC_SANDBOX_MIRROR:-http://deb.debian.org/debian}

log() { echo "hpc-sandbox-root: $*" >&2; }
die() { log "error: $*"; exit 1; }

suite_for() {
  case $1 in
    24.11) echo trixie ;;
    *) die "no Debian suite known for SLURM $1 (known: 24.11)" ;;
  esac
}

# Settings mmdebstrap leaves otherwise, fixed in place (cheap when already done).
complete() {
  local root=$1
  # sshd (UsePAM no) refuses even key logins for a locked root ("!" in shadow); "*" only forbids passwords.
  if [[ $(awk -F: '$1 == "root" {print $2}' "$root/etc/shadow") == '!'* ]]; then
    chroot "$root" /usr/sbin/usermod -p '*' root
  fi
}

main() {
  local version=${1:-} suite root tmp started
  [[ -n $version ]] || { echo "usage: $0 VERSION" >&2; exit 2; }
  suite=$(suite_for "$version")
  root=$ROOTS/$suite
  if [[ -x $root/usr/sbin/slurmctld ]]; then complete "$root"; echo "$root"; return 0; fi
  [[ $(id -u) == 0 ]] || die "building $root needs root (mmdebstrap --mode=root)"
  if ! command -v mmdebstrap >/dev/null || ! command -v bwrap >/dev/null; then
    log "installing mmdebstrap bubblewrap (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap bubblewrap >&2 \
      || die "mmdebstrap/bubblewrap missing and apt-get install failed"
  fi
  mkdir -p "$ROOTS"
  exec 8>"$ROOTS/.$suite.lock"
  flock -w 1800 8 || die "another build of $root holds $ROOTS/.$suite.lock"
  if [[ -x $root/usr/sbin/slurmctld ]]; then echo "$root"; return 0; fi
  tmp=$ROOTS/.$suite.building
  # A build killed midway may leave /proc, /sys or /dev mounted inside: never delete through a mount.
  if findmnt -rn -o TARGET | grep -q "^$tmp/"; then die "mounts left under $tmp (umount -R $tmp, then retry)"; fi
  rm -rf --one-file-system "$tmp"
  started=$SECONDS
  log "building $root (Debian $suite, SLURM $version) with mmdebstrap; a few minutes, once per machine"
  # policy-rc.d keeps the postinsts from starting daemons; docs and man pages are left out to keep it small.
  mmdebstrap --mode=root --variant=apt --quiet \
    --include=slurmctld,slurmd,slurm-client,slurmdbd,munge,openssh-server,openssh-client,rsync,python3,procps \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$suite" "$tmp" "$MIRROR" >&2
  complete "$tmp"
  mv "$tmp" "$root"
  log "built $root in $((SECONDS - started)) s"
  echo "$root"
}

main "$@"
