#!/usr/bin/env bash
# A real single-node SLURM cluster with accounting (slurmdbd + MariaDB), reachable over SSH on 127.0.0.1:2222.
#
#   scripts/hpc-sandbox.sh up [--slurm VERSION]      install (apt, if missing) and start munge, mariadb, slurmdbd,
#                                                     slurmctld, slurmd, sshd; idempotent
#   scripts/hpc-sandbox.sh down [--slurm VERSION]    cancel the sandbox's jobs, then stop only the daemons it started
#   scripts/hpc-sandbox.sh status [--slurm VERSION]  one line per daemon; exit 0 when all run, 3 otherwise
#   scripts/hpc-sandbox.sh env [--slurm VERSION]     print the settings (SLURM_CONF, AIRFLOW_CONN_...) as `export` lines
#
# Without --slurm (or with the host's own version) the host's SLURM (Debian 12: 22.05) runs. --slurm 24.11 runs
# Debian 13's SLURM from a root built once per machine by scripts/hpc-sandbox-root.sh, under bwrap (own mount
# namespace: own /run, so its own munge socket), beside the host's, on its own ports: ssh 2223, slurm 6827-6829,
# MariaDB 3317, in /tmp/corpusbridge-sandbox-2411; its connection is AIRFLOW_CONN_CORPUSBRIDGE_HPC_2411, written
# to $CORPUSBRIDGE_HOME/sandbox-2411.env.
#
# Environment: HPC_SANDBOX_DIR (default /tmp/corpusbridge-sandbox), HPC_SANDBOX_SSH_PORT (2222),
# HPC_SANDBOX_SLURM_PORT (6817: slurmctld; slurmd +1, slurmdbd +2), HPC_SANDBOX_DB_PORT (3307, MariaDB on
# 127.0.0.1), HPC_SANDBOX_PRIVATE_RUN (0; 1 runs the host's SLURM under bwrap with its own /run, hence its own
# munge socket, as --slurm does: needed for a second instance on the host, since SLURM 22.05's clients ignore
# AuthInfo=socket= on their slurmdbd connection),
# HPC_SANDBOX_MIN_JOB_AGE (600 s: how long squeue/scontrol keep a finished job), HPC_SANDBOX_ACCOUNTING (1; 0 runs
# without slurmdbd), CORPUSBRIDGE_HOME (default ./.corpusbridge; `up` writes sandbox.env there), HPC_SANDBOX_CPUS
# (default 8: slurmd advertises more CPUs than the box has so that small arrays run side by side),
# HPC_SANDBOX_APPLY (unset: a running sandbox keeps its slurm.conf; `idle-restart`: `up` applies a changed
# slurm.conf by restarting slurmctld, only when the queue is empty).
# Recipe and measurements: shared/notes/slurm-ssh-sandbox.md (Debian 12, no systemd).
set -euo pipefail

HOST_SLURM=22.05
SLURM_VERSION=$HOST_SLURM
ARGS=()
while (($#)); do
  case $1 in
    --slurm) SLURM_VERSION=${2:?--slurm needs a version, e.g. 24.11}; shift 2 ;;
    --slurm=*) SLURM_VERSION=${1#--slurm=}; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
# Defaults per version; each can still be overridden by the environment.
case $SLURM_VERSION in
  "$HOST_SLURM"|host|"") SLURM_VERSION=$HOST_SLURM; SUFFIX=""; D_DIR=/tmp/corpusbridge-sandbox; D_SSH=2222; D_SLURM=6817; D_DB=3307 ;;
  24.11) SUFFIX=_2411; D_DIR=/tmp/corpusbridge-sandbox-2411; D_SSH=2223; D_SLURM=6827; D_DB=3317 ;;
  *) echo "hpc-sandbox: error: SLURM $SLURM_VERSION is not offered (host: $HOST_SLURM; others: 24.11)" >&2; exit 2 ;;
esac

SANDBOX=${HPC_SANDBOX_DIR:-$D_DIR}
CB_HOME=${CORPUSBRIDGE_HOME:-./.corpusbridge}
PORT=${HPC_SANDBOX_SSH_PORT:-$D_SSH}
CTLD_PORT=${HPC_SANDBOX_SLURM_PORT:-$D_SLURM}
SLURMD_PORT=$((CTLD_PORT + 1))
DBD_PORT=$((CTLD_PORT + 2))
DB_PORT=${HPC_SANDBOX_DB_PORT:-$D_DB}
MUNGE_SOCKET=/run/munge/munge.socket.2
MIN_JOB_AGE=${HPC_SANDBOX_MIN_JOB_AGE:-600}
ACCOUNTING=${HPC_SANDBOX_ACCOUNTING:-1}
HOST=127.0.0.1
RUN=$SANDBOX/run
LOG=$SANDBOX/log
SSHDIR=$SANDBOX/ssh
CONF=$SANDBOX/etc/slurm.conf
DBD_CONF=$SANDBOX/etc/slurmdbd.conf
DB_DIR=$SANDBOX/mysql
CONN_NAME=AIRFLOW_CONN_CORPUSBRIDGE_HPC$SUFFIX
ENV_FILE=sandbox${SUFFIX//_/-}.env
RESTART_CTLD=0
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
  local missing=0 bin pkgs="openssh-server openssh-client slurm-wlm munge rsync"
  ((ACCOUNTING)) && pkgs+=" slurmdbd mariadb-server"
  for bin in /usr/sbin/sshd /usr/bin/ssh /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/sbin/munged \
             /usr/bin/rsync; do
    [[ -x $bin ]] || missing=1
  done
  ((ACCOUNTING)) && { [[ -x /usr/sbin/slurmdbd ]] || missing=1; }
  # MariaDB always runs from the host (see start_database).
  ((ACCOUNTING)) && [[ -z ${HPC_SANDBOX_INSIDE:-} ]] && { [[ -x /usr/sbin/mariadbd ]] || missing=1; }
  ((missing)) || return 0
  [[ $(id -u) == 0 ]] || die "some of $pkgs are missing and this is not root: \
install them (apt-get install $pkgs) or run as root"
  [[ -z ${HPC_SANDBOX_INSIDE:-} ]] || die "the SLURM $SLURM_VERSION root lacks some of $pkgs: remove it to rebuild"
  log "installing $pkgs (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $pkgs >/dev/null
}

start_munge() {
  alive "$SANDBOX/munge/munged.pid" munged && return 0
  mkdir -p "$SANDBOX/munge" "$(dirname "$MUNGE_SOCKET")"
  chown munge:munge "$SANDBOX/munge" "$(dirname "$MUNGE_SOCKET")"
  chmod 0700 "$SANDBOX/munge"; chmod 0755 "$(dirname "$MUNGE_SOCKET")"
  if [[ ! -s $SANDBOX/munge/munge.key ]]; then
    runuser -u munge -- /usr/sbin/mungekey --create --keyfile="$SANDBOX/munge/munge.key"
    chmod 0400 "$SANDBOX/munge/munge.key"
  fi
  runuser -u munge -- /usr/sbin/munged --key-file="$SANDBOX/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$SANDBOX/munge/munged.pid" --log-file="$SANDBOX/munge/munged.log" \
    --seed-file="$SANDBOX/munge/munged.seed" 9>&-
  wait_for 10 bash -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'" \
    || die "munged did not answer; see $SANDBOX/munge/munged.log"
}

# --- accounting: MariaDB (127.0.0.1:$DB_PORT, data under the sandbox) and slurmdbd ---

db_client() {  # as the OS root over the server's own unix socket (unix_socket auth): no password needed
  mariadb --no-defaults --socket="$DB_DIR/mysqld.sock" --user=root "$@"
}

start_mariadb() {
  alive "$RUN/mariadbd.pid" mariadbd && return 0
  mkdir -p "$DB_DIR"
  if [[ ! -d $DB_DIR/data/mysql ]]; then
    rm -rf "$DB_DIR/data.new"
    mariadb-install-db --no-defaults --user=root --datadir="$DB_DIR/data.new" --skip-test-db \
      --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed; see $LOG/mariadb-install.log"
    mv "$DB_DIR/data.new" "$DB_DIR/data"
  fi
  # mariadbd does not daemonize: setsid detaches it from this shell; it listens on loopback only.
  setsid /usr/sbin/mariadbd --no-defaults --user=root --datadir="$DB_DIR/data" --socket="$DB_DIR/mysqld.sock" \
    --bind-address="$HOST" --port="$DB_PORT" --pid-file="$RUN/mariadbd.pid" --log-error="$LOG/mariadbd.log" \
    --skip-name-resolve --innodb-buffer-pool-size=64M --max-connections=50 </dev/null >/dev/null 2>&1 9>&- &
  wait_for 60 db_client -e 'SELECT 1' || die "mariadbd did not answer; see $LOG/mariadbd.log"
}

db_password() {  # made once per sandbox, kept beside slurmdbd.conf (both readable by root only)
  [[ -s $SANDBOX/etc/db.password ]] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$SANDBOX/etc/db.password")
  cat "$SANDBOX/etc/db.password"
}

# The database and its user. Run on the host, also for another SLURM version (before entering its root): Debian
# 13's slurmdbd 24.11.5 fails against its own MariaDB 11.8 (`_check_mysql_concat_is_sane: ... 5027 Number of
# columns in result set exceeds maximum allowed number of columns (=0)`) but works with the host's 10.11.
start_database() {
  ((ACCOUNTING)) || return 0
  start_mariadb
  db_client -e "CREATE USER IF NOT EXISTS 'slurm'@'$HOST' IDENTIFIED BY '$(db_password)';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'$HOST';" || die "could not create the slurm database user"
}

write_slurmdbd_conf() {
  local pw
  pw=$(db_password)
  # slurmdbd refuses a config readable by others (it holds the database password).
  local tmp
  tmp=$(umask 077; mktemp "$DBD_CONF.XXXXXX")
  cat > "$tmp" <<EOF
AuthType=auth/munge
DbdAddr=$HOST
DbdHost=$(hostname -s)
DbdPort=$DBD_PORT
# Listen on the host name's address (loopback here), as slurmctld/slurmd do, instead of 0.0.0.0.
CommunicationParameters=NoInAddrAny
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=$HOST
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$pw
StorageLoc=slurm_acct_db
EOF
  if cmp -s "$tmp" "$DBD_CONF"; then rm -f "$tmp"; else mv -f "$tmp" "$DBD_CONF"; fi
}

start_slurmdbd() {
  ((ACCOUNTING)) || return 0
  [[ -n ${HPC_SANDBOX_INSIDE:-} ]] || start_database
  alive "$RUN/mariadbd.pid" mariadbd || die "mariadbd is not running (see $LOG/mariadbd.log)"
  write_slurmdbd_conf
  if ! alive "$RUN/slurmdbd.pid" slurmdbd; then
    /usr/sbin/slurmdbd 9>&-  # reads slurmdbd.conf beside $SLURM_CONF || die "slurmdbd did not start; see $LOG/slurmdbd.log"
  fi
  # The first start creates the schema (seconds); the cluster must be registered before slurmctld reports to it.
  # A running sandbox that kept its slurm.conf without accounting cannot reach slurmdbd through it yet.
  conf_has_accounting || { log "slurmdbd runs; slurmctld gets it at its next restart (see HPC_SANDBOX_APPLY)"; return 0; }
  wait_for 120 sacctmgr -n list cluster || die "slurmdbd did not answer; see $LOG/slurmdbd.log"
  if [[ -z $(sacctmgr -n -P list cluster sandbox format=cluster 2>/dev/null) ]]; then
    sacctmgr -i add cluster sandbox >/dev/null || die "sacctmgr add cluster sandbox failed"
  fi
}

accounting_lines() {
  if ((ACCOUNTING)); then
    echo "AccountingStorageType=accounting_storage/slurmdbd"
    echo "AccountingStorageHost=$HOST"
    echo "AccountingStoragePort=$DBD_PORT"
  else
    echo "AccountingStorageType=accounting_storage/none"
  fi
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
$(accounting_lines)
JobCompType=jobcomp/none
MailProg=/bin/true
MaxArraySize=1001
MaxJobCount=10000
MinJobAge=$MIN_JOB_AGE
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SlurmdTimeout=60
# Bind slurmctld/slurmd to the node's address instead of 0.0.0.0 (the node name resolves to $HOST here): servers
# the project starts listen on loopback only.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
EOF
  ((cpus > nproc_real)) && echo "SlurmdParameters=config_overrides"
  # Only another instance names its ports: the default file stays as it was.
  ((CTLD_PORT != 6817)) && printf 'SlurmctldPort=%d\nSlurmdPort=%d\n' "$CTLD_PORT" "$SLURMD_PORT"
  echo "NodeName=$node NodeAddr=$HOST NodeHostname=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN"
  echo "PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP"
}

write_slurm_conf() {
  local fresh
  mkdir -p "$SANDBOX/etc" "$SANDBOX/state" "$SANDBOX/spool/slurmd" "$RUN" "$LOG"
  fresh=$(render_slurm_conf)
  [[ -f $CONF && $(<"$CONF") == "$fresh" ]] && return 0
  # Changing the node's CPUs under a running slurmctld aborts the running jobs: keep the old file then, unless
  # asked to restart slurmctld while nothing is queued (HPC_SANDBOX_APPLY=idle-restart).
  if [[ -f $CONF ]] && { alive "$RUN/slurmctld.pid" slurmctld || alive "$RUN/slurmd.pid" slurmd; }; then
    if [[ ${HPC_SANDBOX_APPLY:-} == idle-restart ]] && alive "$RUN/slurmctld.pid" slurmctld \
       && [[ -z $(squeue -h -o %A 2>/dev/null) ]]; then
      log "slurm.conf changed and the queue is empty: restarting slurmctld to apply it"
      RESTART_CTLD=1
    else
      log "slurm.conf would change but slurm runs: keeping $CONF (run 'down' then 'up', or 'up' with \
HPC_SANDBOX_APPLY=idle-restart while no job is queued, to apply it)"
      return 0
    fi
  fi
  printf '%s\n' "$fresh" | install_file "$CONF" || true
}

conf_has_accounting() { grep -q '^AccountingStorageType=accounting_storage/slurmdbd' "$CONF"; }

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
  if ((RESTART_CTLD)); then
    stop_pid "$RUN/slurmctld.pid" slurmctld
  fi
  if ! alive "$RUN/slurmctld.pid" slurmctld; then
    /usr/sbin/slurmctld -f "$CONF" 9>&-
  fi
  wait_for 30 scontrol ping || die "slurmctld did not answer; see $LOG/slurmctld.log"
  if ! alive "$RUN/slurmd.pid" slurmd; then
    /usr/sbin/slurmd -f "$CONF" 9>&-
  elif ((RESTART_CTLD)); then
    scontrol reconfigure || log "scontrol reconfigure failed: slurmd keeps its old view of slurm.conf"
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
  echo "HPC_SANDBOX_SLURM_VERSION=$SLURM_VERSION"
  echo "HPC_SANDBOX_PORTS=$(ports_line)"
  echo "$CONN_NAME='$(connection_json)'"
}

ports_line() {  # what listens where (all on 127.0.0.1), for tests that check it
  local line="sshd:$PORT,slurmctld:$CTLD_PORT,slurmd:$SLURMD_PORT"
  ((ACCOUNTING)) && conf_has_accounting && line+=",slurmdbd:$DBD_PORT,mariadbd:$DB_PORT"
  echo "$line"
}

write_env_file() {
  mkdir -p "$CB_HOME"
  env_lines > "$CB_HOME/$ENV_FILE.tmp"
  mv "$CB_HOME/$ENV_FILE.tmp" "$CB_HOME/$ENV_FILE"
  log "wrote $CB_HOME/$ENV_FILE (load it with: set -a; . $CB_HOME/$ENV_FILE; set +a)"
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
  start_slurmdbd
  start_slurm
  start_sshd
  install_container_runner
  write_env_file
  echo "HPC_SANDBOX_PORTS=$(ports_line)"
  echo "$CONN_NAME='$(connection_json)'"
}

cmd_down() {
  [[ -d $SANDBOX ]] || return 0
  cancel_jobs
  stop_sshd
  stop_pid "$RUN/slurmd.pid" slurmd
  stop_pid "$RUN/slurmctld.pid" slurmctld
  stop_pid "$RUN/slurmdbd.pid" slurmdbd
  stop_pid "$RUN/mariadbd.pid" mariadbd
  stop_pid "$SANDBOX/munge/munged.pid" munged
  log "stopped"
}

cmd_status() {
  local ok=0 line
  local daemons=("munged $SANDBOX/munge/munged.pid")
  ((ACCOUNTING)) && daemons+=("mariadbd $RUN/mariadbd.pid" "slurmdbd $RUN/slurmdbd.pid")
  daemons+=("slurmctld $RUN/slurmctld.pid" "slurmd $RUN/slurmd.pid" "sshd $RUN/sshd.pid")
  for line in "${daemons[@]}"; do
    set -- $line
    if alive "$2" "$1"; then echo "$1 running pid $(<"$2")"; else echo "$1 stopped"; ok=3; fi
  done
  return $ok
}

# Another SLURM release runs from its own Debian root (scripts/hpc-sandbox-root.sh) under bwrap: the same script,
# re-executed inside, with that root's binaries. The host's /tmp (the sandbox and its scratch), /dev, /proc and
# /sys are shared; /run is private, so munge keeps its default socket path without meeting the host's munged.
# Daemons are started with the host's network and pids (status and stop work from outside); they keep the mount
# namespace alive after bwrap's own child exits.
in_version_root() {
  local root=/ scripts
  scripts=$(realpath "$(dirname "$0")")
  if [[ $SLURM_VERSION != "$HOST_SLURM" ]]; then
    root=$("$(dirname "$0")/hpc-sandbox-root.sh" "$SLURM_VERSION") || die "no Debian root for SLURM $SLURM_VERSION"
  fi
  command -v bwrap >/dev/null || die "bwrap is missing: apt-get install bubblewrap"
  mkdir -p "$SANDBOX/runfs" "$CB_HOME"
  exec bwrap --bind "$root" / --dev-bind /dev /dev --proc /proc --bind /sys /sys --bind /tmp /tmp \
    --bind "$SANDBOX/runfs" /run --bind "$(realpath "$CB_HOME")" "$(realpath "$CB_HOME")" \
    --ro-bind "$scripts" "$scripts" \
    --ro-bind /etc/hosts /etc/hosts --setenv HPC_SANDBOX_INSIDE "$SLURM_VERSION" --setenv PATH /usr/sbin:/usr/bin:/sbin:/bin \
    --chdir / \
    /bin/bash "$scripts/hpc-sandbox.sh" "$@" --slurm "$SLURM_VERSION"
}

main() {
  local action=${1:-}
  if [[ ($SLURM_VERSION != "$HOST_SLURM" || ${HPC_SANDBOX_PRIVATE_RUN:-0} == 1) \
        && ${HPC_SANDBOX_INSIDE:-} != "$SLURM_VERSION" && $action != status ]]; then
    CB_HOME=$(mkdir -p "$CB_HOME" && realpath "$CB_HOME")
    export CORPUSBRIDGE_HOME=$CB_HOME
    if [[ $action == up ]]; then
      mkdir -p "$SANDBOX" "$RUN" "$LOG" "$SANDBOX/etc"
      ( exec 9>"$SANDBOX/.lock"; flock -w 300 9 || die "another hpc-sandbox.sh holds $SANDBOX/.lock"
        ensure_installed; start_database )
    fi
    in_version_root "$@"
  fi
  case $action in
    up|down)
      mkdir -p "$SANDBOX"
      # `up` from two test sessions at once must not start two slurmctlds: one at a time per sandbox.
      # Daemons are started with `9>&-`: one that inherited the lock would hold it for ever.
      exec 9>"$SANDBOX/.lock"
      flock -w 300 9 || die "another hpc-sandbox.sh holds $SANDBOX/.lock"
      "cmd_$action" ;;
    status) cmd_status ;;
    env) [[ -s $CONF ]] || die "no sandbox at $SANDBOX (run: $0 up)"; env_lines | sed 's/^/export /' ;;
    *) echo "usage: $0 up|down|status|env [--slurm VERSION]" >&2; exit 2 ;;
  esac
}

main "${ARGS[@]}"
