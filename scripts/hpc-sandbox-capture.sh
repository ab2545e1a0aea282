#!/usr/bin/env bash
# Capture what SLURM really prints (sbatch, squeue, scontrol, sacct) from a running sandbox, for parser fixtures.
#
#   scripts/hpc-sandbox-capture.sh SSH_CONFIG OUT_DIR [--sacct-only]
#
# SSH_CONFIG is a sandbox's ssh/ssh_config (host alias `sandbox`); OUT_DIR gets one file per output, named as in
# tests/fixtures/slurm/ (`<command>-<what>.txt`), plus `sinfo-version.txt`. Jobs are named `cb-fixture-*` and
# write nothing. --sacct-only captures the accounting outputs only (for an instance whose MinJobAge is short).
# What each file holds is listed in OUT_DIR/README.md, written by hand from this script's comments.
set -euo pipefail

CONFIG=${1:?usage: $0 SSH_CONFIG OUT_DIR [--sacct-only]}
OUT=${2:?usage: $0 SSH_CONFIG OUT_DIR [--sacct-only]}
SACCT_ONLY=${3:-}
mkdir -p "$OUT"

r() { ssh -F "$CONFIG" sandbox "$(printf "%q " "$@")"; }  # each argument quoted for the remote shell
out() { local name=$1; shift; r "$@" > "$OUT/$name.txt" || true; }        # stdout only
err() { local name=$1; shift; r "$@" 2> "$OUT/$name.txt" >/dev/null || true; }  # stderr only
sb() { r sbatch --parsable --output=/dev/null "$@"; }
wait_gone_from_queue() {  # until none of the ids is pending/running any more
  local i
  for i in $(seq 120); do [[ -z $(r squeue -h -o %A -j "$1" 2>/dev/null) ]] && return 0; sleep 1; done
}
wait_sacct_final() {  # until sacct shows no PENDING/RUNNING row for the ids (slurmdbd hears of ends a moment later)
  local i
  for i in $(seq 120); do
    ! r sacct -P -X -n -o State -j "$1" | grep -qE 'PENDING|RUNNING|REQUEUED' && return 0
    sleep 1
  done
}
FMT="%i|%T|%r"
SACCT=(sacct -P -X -n -o JobID,JobName,State,ExitCode,Reason)

out sinfo-version sinfo -V

single=$(sb --job-name=cb-fixture-fail --wrap 'exit 3')
array=$(sb --job-name=cb-fixture-array --array=0-3%2 --wrap 'sleep 5')
cancel=$(sb --job-name=cb-fixture-cancel --wrap 'sleep 300')
# The even indices of a 40-task array, throttled: what a retry of those indices submits (step form when pending).
evens=$(seq -s, 0 2 38)
step=$(sb --job-name=cb-fixture-step --array="$evens%2" --wrap 'sleep 2')
sleep 3
if [[ -z $SACCT_ONLY ]]; then
  echo "$single" > "$OUT/sbatch-parsable-single.txt"
  echo "$array" > "$OUT/sbatch-parsable-array.txt"
  out squeue-array-pending-running squeue -h --states=all -o "$FMT" -j "$array,$single"
  out squeue-array-r squeue -h -r --states=all -o "$FMT" -j "$array"
  out squeue-array-step-form squeue -h --states=all -o "$FMT" -j "$step"
  out squeue-array-step-form-bitstr-len-0 env SLURM_BITSTR_LEN=0 squeue -h --states=all -o "$FMT" -j "$step"
  out scontrol-array-running scontrol show job -o "$array"
  out scontrol-array-step-form scontrol show job -o "$step"
  err sbatch-test-only-ok sbatch --test-only --wrap 'sleep 1'
  err sbatch-test-only-bad-partition sbatch --test-only --partition=no-such-partition --wrap 'sleep 1'
  err squeue-invalid-id squeue -h -o "$FMT" -j 999999
  err scontrol-invalid-id scontrol show job -o 999999
fi
for _ in $(seq 60); do [[ -n $(r sacct -X -n -j "$step") ]] && break; sleep 1; done  # slurmdbd hears of it later
out sacct-array-step-form-pending "${SACCT[@]}" -j "$step"
r scancel "$cancel"
wait_gone_from_queue "$single,$array,$cancel"
if [[ -z $SACCT_ONLY ]]; then
  out squeue-finished squeue -h --states=all -o "$FMT" -j "$single,$array,$cancel"
  out scontrol-failed scontrol show job -o "$single"
  out scontrol-cancelled scontrol show job -o "$cancel"
  out scontrol-array-finished scontrol show job -o "$array"
fi
wait_sacct_final "$single,$array,$cancel"
out sacct-finished "${SACCT[@]}" -j "$single,$array,$cancel"
out sacct-cancelled "${SACCT[@]}" -j "$cancel"
out sacct-unknown-id "${SACCT[@]}" -j 999999
# The remainder still pending is cancelled as one record (step form); what already ran keeps its own rows.
r scancel "$step"
wait_gone_from_queue "$step"
wait_sacct_final "$step"
out sacct-array-step-form-cancelled "${SACCT[@]}" -j "$step"
echo "captured into $OUT" >&2
