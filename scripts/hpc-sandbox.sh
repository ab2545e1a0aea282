#!/usr/bin/env bash
# A real single-node SLURM cluster reachable over SSH on 127.0.0.1:2222, for tests and demos.
#
#   scripts/hpc-sandbox.sh up      install (apt, if missing) and start munge, slurmctld, slurmd, sshd; idempotent
#   scripts/hpc-sandbox.sh down    cancel the sandbox's jobs, then stop only the daemons it started (pid files)
#   scripts/hpc-sandbox.sh status  one line per daemon; exit 0 when all run, 3 otherwise
#   scripts/hpc-sandbox.sh env     print the settings (SLURM_CONF, AIRFLOW_CONN_CORPUSBRIDGE_HPC) as `export` lines
#
# Environment: HPC_SANDBOX_DIR (default /tmp/corpusbridge-sandbox; one per machine, the port is fixed),
# CORPUSBRIDGE_HOME (default ./.corpusbridge; `up` writes sandbox.env there), HPC_SANDBOX_CPUS (default 8:
# slurmd advertises more CPUs than the box has so that small arrays run side by side).
# Recipe and measurements: shared/notes/slurm-ssh-sandbox.md (Debian 12, no systemd).
set -euo pipefail

SANDBOX=${HPC_SANDBOX_DIR:-/tmp/corpusbridge-sandbox}
CB_HOME=${CORPUSBRIDGE_HOME:-./.corpusbridge}
PORT=2222
HOST=127.0.0.1
RUN=$SANDBOX/run
LOG=$SANDBOX/log
SSHDIR=$SANDBOX/ssh
CONF=$SANDBOX/etc/slurm.conf
export SLURM_CONF=$CONF

log() { echo "hpc-sandbox: $*" >&2; }
die() { log "error: $*"; exit 1; }

# A pid counts as ours and alive only if it runs the expected program and is not a zombie
# (PID 1 here reaps late, so `kill -0` alone succeeds on a dead daemon for ~2 s).
alive() {
  local pidfile=$1 comm=$2 pid state
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

wait_for() {  # wait_for SECONDS CMD... : poll every 0.2 s
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# install_file PATH < content: replace PATH atomically, and only when the content changed (return 0 then, else 1),
# so that an `up` next to running tests never shows them a half-written config.
install_file() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  chmod 0644 "$tmp"; mv -f "$tmp" "$1"
}

ensure_installed() {
  local missing=0 bin
  for bin in /usr/sbin/sshd /usr/bin/ssh /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/sbin/munged \
             /usr/bin/rsync; do
    [[ -x $bin ]] || missing=1
  done
  ((missing)) || return 0
  [[ $(id -u) == 0 ]] || die "openssh-server, slurm-wlm, munge and rsync are missing and this is not root: \
install them (apt-get install openssh-server openssh-client slurm-wlm munge rsync) or run as root"
  log "installing openssh-server slurm-wlm munge rsync (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends openssh-server openssh-client slurm-wlm munge rsync >/dev/null
}

start_munge() {
  alive "$SANDBOX/munge/munged.pid" munged && return 0
  mkdir -p "$SANDBOX/munge" /run/munge
  chown munge:munge "$SANDBOX/munge" /run/munge
  chmod 0700 "$SANDBOX/munge"; chmod 0755 /run/munge
  if [[ ! -s $SANDBOX/munge/munge.key ]]; then
    runuser -u munge -- /usr/sbin/mungekey --create --keyfile="$SANDBOX/munge/munge.key"
    chmod 0400 "$SANDBOX/munge/munge.key"
  fi
  runuser -u munge -- /usr/sbin/munged --key-file="$SANDBOX/munge/munge.key" \
    --pid-file="$SANDBOX/munge/munged.pid" --log-file="$SANDBOX/munge/munged.log" \
    --seed-file="$SANDBOX/munge/munged.seed" 9>&-
  wait_for 10 bash -c 'munge -n | unmunge' || die "munged did not answer; see $SANDBOX/munge/munged.log"
}

render_slurm_conf() {
  local node cpus mem nproc_real
  node=$(hostname -s)
  nproc_real=$(nproc)
  cpus=${HPC_SANDBOX_CPUS:-8}
  mem=$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')
  cat <<EOF
ClusterName=sandbox
SlurmctldHost=$node($HOST)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$SANDBOX/state
SlurmdSpoolDir=$SANDBOX/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
MaxArraySize=1001
MaxJobCount=10000
MinJobAge=600
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SlurmdTimeout=60
# Bind slurmctld/slurmd to the node's address instead of 0.0.0.0 (the node name resolves to $HOST here): servers
# the project starts listen on loopback only.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
EOF
  ((cpus > nproc_real)) && echo "SlurmdParameters=config_overrides"
  echo "NodeName=$node NodeAddr=$HOST NodeHostname=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN"
  echo "PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP"
}

write_slurm_conf() {
  local fresh
  mkdir -p "$SANDBOX/etc" "$SANDBOX/state" "$SANDBOX/spool/slurmd" "$RUN" "$LOG"
  fresh=$(render_slurm_conf)
  [[ -f $CONF && $(<"$CONF") == "$fresh" ]] && return 0
  # Changing the node's CPUs under a running slurmctld aborts the running jobs: keep the old file then.
  if [[ -f $CONF ]] && { alive "$RUN/slurmctld.pid" slurmctld || alive "$RUN/slurmd.pid" slurmd; }; then
    log "slurm.conf would change but slurm runs: keeping $CONF (run 'down' then 'up' to apply)"
    return 0
  fi
  printf '%s\n' "$fresh" > "$CONF"
}

node_ready() {
  local state
  state=$(sinfo -h -n "$(hostname -s)" -o %t 2>/dev/null) || return 1
  case $state in
    idle|mix|alloc|comp) return 0 ;;
    down*|drain*|drng*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true; return 1 ;;
    *) return 1 ;;
  esac
}

start_slurm() {
  if ! alive "$RUN/slurmctld.pid" slurmctld; then
    /usr/sbin/slurmctld -f "$CONF" 9>&-
  fi
  wait_for 30 scontrol ping || die "slurmctld did not answer; see $LOG/slurmctld.log"
  if ! alive "$RUN/slurmd.pid" slurmd; then
    /usr/sbin/slurmd -f "$CONF" 9>&-
  fi
  wait_for 30 node_ready || die "node $(hostname -s) not idle; see $LOG/slurmd.log and 'sinfo -R'"
}

write_ssh_files() {
  mkdir -p "$SSHDIR" /run/sshd "$SANDBOX/scratch"
  chmod 0700 "$SSHDIR"; chmod 0755 /run/sshd
  [[ -s $SSHDIR/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C sandbox-host -f "$SSHDIR/ssh_host_ed25519_key"
  [[ -s $SSHDIR/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C sandbox-client -f "$SSHDIR/id_ed25519"
  install_file "$SSHDIR/authorized_keys" < "$SSHDIR/id_ed25519.pub" || true
  # Tests append throw-away client keys here to count their own logins in sshd.log; `up` leaves it alone.
  touch "$SSHDIR/authorized_keys_tests"
  # Written from the host key itself: nothing is learned from the network (no trust on first use).
  echo "[$HOST]:$PORT $(cut -d' ' -f1,2 "$SSHDIR/ssh_host_ed25519_key.pub")" | install_file "$SSHDIR/known_hosts" || true
  if install_file "$SSHDIR/sshd_config" <<EOF
ListenAddress $HOST
Port $PORT
HostKey $SSHDIR/ssh_host_ed25519_key
PidFile $RUN/sshd.pid
AuthorizedKeysFile $SSHDIR/authorized_keys $SSHDIR/authorized_keys_tests
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
# The sandbox lives under /tmp: with StrictModes sshd refuses keys there ("bad ownership or modes").
StrictModes no
# One ControlMaster carries every command of a poll tick; the default 10 sessions would refuse the 11th.
MaxSessions 64
MaxStartups 64:30:128
SetEnv SLURM_CONF=$CONF
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel INFO
EOF
  then
    # sshd re-executes itself with the new config on HUP; open sessions (ControlMasters) are not touched.
    if alive "$RUN/sshd.pid" sshd; then kill -HUP "$(<"$RUN/sshd.pid")"; sleep 0.3; fi
  fi
  install_file "$SSHDIR/ssh_config" <<EOF || true
Host sandbox
  HostName $HOST
  Port $PORT
  User root
  IdentityFile $SSHDIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $SSHDIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ControlMaster auto
  ControlPath $SSHDIR/cm-%C
  ControlPersist 60
EOF
}

ssh_direct() {  # a fresh connection (no master left behind), for health checks
  ssh -F "$SSHDIR/ssh_config" -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=5 sandbox "$@"
}

start_sshd() {
  write_ssh_files
  if ! alive "$RUN/sshd.pid" sshd; then
    /usr/sbin/sshd -t -f "$SSHDIR/sshd_config" || die "sshd_config rejected: $SSHDIR/sshd_config"
    /usr/sbin/sshd -f "$SSHDIR/sshd_config" -E "$LOG/sshd.log" 9>&-
  fi
  wait_for 10 ssh_direct true || die "ssh to $HOST:$PORT fails; see $LOG/sshd.log"
  ssh_direct sinfo -h -o %P >/dev/null || die "sinfo over ssh fails (is SLURM_CONF reaching ssh sessions?)"
}

connection_json() {
  local host_key
  host_key=$(cut -d' ' -f1,2 "$SSHDIR/ssh_host_ed25519_key.pub")
  printf '{"conn_type": "ssh", "host": "%s", "port": %d, "login": "root", "extra": {"key_file": "%s", "host_key": "%s", "known_hosts": "%s", "scratch_root": "%s", "partition": "debug", "slurm_conf": "%s"}}' \
    "$HOST" "$PORT" "$SSHDIR/id_ed25519" "$host_key" "$SSHDIR/known_hosts" "$SANDBOX/scratch" "$CONF"
}

env_lines() {
  echo "SLURM_CONF=$CONF"
  echo "HPC_SANDBOX_DIR=$SANDBOX"
  echo "HPC_SANDBOX_SSH_CONFIG=$SSHDIR/ssh_config"
  echo "AIRFLOW_CONN_CORPUSBRIDGE_HPC='$(connection_json)'"
}

write_env_file() {
  mkdir -p "$CB_HOME"
  env_lines > "$CB_HOME/sandbox.env.tmp"
  mv "$CB_HOME/sandbox.env.tmp" "$CB_HOME/sandbox.env"
  log "wrote $CB_HOME/sandbox.env (load it with: set -a; . $CB_HOME/sandbox.env; set +a)"
}

stop_pid() {  # stop_pid PIDFILE COMM : TERM, then KILL after 10 s
  local pidfile=$1 comm=$2 pid i
  alive "$pidfile" "$comm" || { rm -f "$pidfile"; return 0; }
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    alive "$pidfile" "$comm" || break
    sleep 0.2
  done
  alive "$pidfile" "$comm" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

cancel_jobs() {
  alive "$RUN/slurmctld.pid" slurmctld || return 0
  local jobs
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ') || return 0
  [[ -n ${jobs// /} ]] || return 0
  log "cancelling jobs: $jobs"
  # shellcheck disable=SC2086
  scancel $jobs 2>/dev/null || true
  # slurmstepd and the job's processes outlive slurmd if not cancelled and reaped first.
  wait_for 15 bash -c '[[ -z $(squeue -h -t running,completing -o %A) ]]' || log "some jobs still completing"
}

stop_sshd() {
  local pid children=""
  ssh -F "$SSHDIR/ssh_config" -O exit sandbox >/dev/null 2>&1 || true
  if alive "$RUN/sshd.pid" sshd; then
    pid=$(<"$RUN/sshd.pid")
    # Session processes (ControlMasters of transports) are children of our listener and outlive it.
    children=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr "\n" " " || true)
  fi
  stop_pid "$RUN/sshd.pid" sshd
  # shellcheck disable=SC2086
  [[ -n ${children// /} ]] && kill -TERM $children 2>/dev/null || true
}

# The sandbox's container runtime (issue 15): scripts/sandbox-apptainer, an `apptainer exec` subset on squashfuse +
# bwrap, installed as $SANDBOX/bin/apptainer and linked as /usr/local/bin/apptainer so that SLURM jobs (whose PATH
# is the ssh session's) find it under the name ClusterSettings.container_runtime allows. A real apptainer already
# there is never replaced. Idempotent and additive: it touches no daemon.
install_container_runner() {
  local src bin=$SANDBOX/bin link=/usr/local/bin/apptainer
  src=$(dirname -- "${BASH_SOURCE[0]}")/sandbox-apptainer
  [[ -f $src ]] || return 0
  if ! command -v squashfuse >/dev/null || ! command -v bwrap >/dev/null; then
    [[ $(id -u) == 0 ]] || { log "squashfuse/bubblewrap missing and not root: no container runtime"; return 0; }
    log "installing squashfuse bubblewrap fuse3 (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends squashfuse bubblewrap fuse3 \
      >/dev/null 2>&1 || { log "apt could not install squashfuse/bubblewrap: no container runtime"; return 0; }
  fi
  mkdir -p "$bin"
  if ! cmp -s "$src" "$bin/sandbox-apptainer"; then  # replaced atomically: running jobs may be starting it
    cp "$src" "$bin/.sandbox-apptainer.tmp" && chmod 0755 "$bin/.sandbox-apptainer.tmp"
    mv -f "$bin/.sandbox-apptainer.tmp" "$bin/sandbox-apptainer"
  fi
  ln -sfn sandbox-apptainer "$bin/apptainer"
  if [[ -L $link || ! -e $link ]] && [[ -w $(dirname "$link") ]]; then ln -sfn "$bin/sandbox-apptainer" "$link"; fi
}

cmd_up() {
  ensure_installed
  mkdir -p "$SANDBOX" "$RUN" "$LOG"
  chmod 0755 "$SANDBOX"
  start_munge
  write_slurm_conf
  start_slurm
  start_sshd
  install_container_runner
  write_env_file
  echo "AIRFLOW_CONN_CORPUSBRIDGE_HPC='$(connection_json)'"
}

cmd_down() {
  [[ -d $SANDBOX ]] || return 0
  cancel_jobs
  stop_sshd
  stop_pid "$RUN/slurmd.pid" slurmd
  stop_pid "$RUN/slurmctld.pid" slurmctld
  stop_pid "$SANDBOX/munge/munged.pid" munged
  log "stopped"
}

cmd_status() {
  local ok=0 line
  for line in "munged $SANDBOX/munge/munged.pid" "slurmctld $RUN/slurmctld.pid" "slurmd $RUN/slurmd.pid" \
              "sshd $RUN/sshd.pid"; do
    set -- $line
    if alive "$2" "$1"; then echo "$1 running pid $(<"$2")"; else echo "$1 stopped"; ok=3; fi
  done
  return $ok
}

main() {
  local action=${1:-}
  case $action in
    up|down)
      mkdir -p "$SANDBOX"
      # `up` from two test sessions at once must not start two slurmctlds: one at a time per sandbox.
      # Daemons are started with `9>&-`: one that inherited the lock would hold it for ever.
      exec 9>"$SANDBOX/.lock"
      flock -w 120 9 || die "another hpc-sandbox.sh holds $SANDBOX/.lock"
      "cmd_$action" ;;
    status) cmd_status ;;
    env) [[ -s $CONF ]] || die "no sandbox at $SANDBOX (run: $0 up)"; env_lines | sed 's/^/export /' ;;
    *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
  esac
}

main "$@"
