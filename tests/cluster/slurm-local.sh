#!/usr/bin/env bash
# A real, private SLURM cluster on this machine (loopback), for the cluster tests.
#
#   tests/cluster/slurm-local.sh start DIR    munged + slurmctld + slurmd, wait for the node
#   tests/cluster/slurm-local.sh stop DIR     cancel jobs, stop the daemons started in DIR
#   tests/cluster/slurm-local.sh env DIR      print `export SLURM_CONF=...` (for eval)
#
# A watchdog stops the cluster when the process SLURM_LOCAL_OWNER_PID (default: the caller of
# `start`) is gone or after SLURM_LOCAL_MAX_S seconds (default 1800), so a test killed by a
# timeout leaves no daemons behind.
#
# Everything (munge key, socket, pid files, slurm.conf, state, spool, logs) lives under DIR, so
# it never touches /etc/slurm, /etc/munge or the system's daemons, and several clusters (one
# per DIR) can run side by side. Needs root (SlurmUser=root) and Debian's slurm-wlm + munge.
# Clients find the cluster through SLURM_CONF=DIR/slurm.conf; `start` also writes DIR/env.sh.
# On failure `start` prints the daemon logs, stops what it started and exits non-zero.
set -euo pipefail

SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
die() { echo "slurm-local: $*" >&2; exit 1; }

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || [ "${1:-}" = watch ] || usage
cmd=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
CONF=$DIR/slurm.conf
MUNGE_SOCKET=$DIR/munge/munge.socket
WAIT_S=${SLURM_LOCAL_WAIT_S:-60}

running() {  # pid -> 0 when it runs (a zombie left for init to reap counts as gone)
  local st
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

pid_alive() {  # pid file -> 0 when its process runs and is ours (DIR on its command line)
  local f=$1 pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && running "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$DIR/"
}

stop_pidfile() {  # pid file, name: TERM, wait up to 10 s, then KILL
  local f=$1 name=$2 pid i
  pid_alive "$f" || { rm -f "$f"; return 0; }
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    echo "slurm-local: $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

port_free() {  # port -> 0 when nothing listens on it (TCP)
  local hex
  hex=$(printf '%04X' "$1")
  ! awk 'NR > 1 { split($2, a, ":"); if (a[2] == "'"$hex"'") found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

pick_ports() {  # two free consecutive ports in 20000..29999, derived from DIR and the clock
  local base i
  base=$(( (($(printf '%s' "$DIR" | cksum | cut -d' ' -f1) + $$ + $(date +%s)) % 4999) * 2 + 20000 ))
  for i in $(seq 0 200); do
    local p=$(( (base - 20000 + 2 * i) % 10000 + 20000 ))
    if port_free "$p" && port_free $((p + 1)); then
      echo "$p"; return 0
    fi
  done
  die "no free port pair in 20000..29999"
}

show_logs() {
  local f
  for f in "$DIR"/log/munged.log "$DIR"/log/slurmctld.log "$DIR"/log/slurmd.log; do
    [ -f "$f" ] || continue
    echo "----- $f (last 60 lines) -----" >&2
    tail -n 60 "$f" >&2
  done
}

do_stop() {
  [ "${1:-}" = from-watchdog ] || stop_pidfile "$DIR/run/watchdog.pid" watchdog
  if [ -f "$CONF" ] && pid_alive "$DIR/run/slurmctld.pid"; then
    export SLURM_CONF=$CONF
    # Cancel what is still queued or running, so no job steps outlive the cluster.
    if [ -n "$(squeue -h -o %A 2>/dev/null)" ]; then
      scancel --full --signal=KILL -u root 2>/dev/null || true
      scancel -u root 2>/dev/null || true
      for _ in $(seq 100); do
        [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
        sleep 0.1
      done
    fi
  fi
  stop_pidfile "$DIR/run/slurmd.pid" slurmd
  stop_pidfile "$DIR/run/slurmctld.pid" slurmctld
  stop_pidfile "$DIR/run/munged.pid" munged
}

do_start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (SlurmUser=root)"
  local b
  for b in munged slurmctld slurmd sinfo sbatch; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || die "$b not found (apt-get install slurm-wlm munge)"
  done
  export PATH=$PATH:/usr/sbin
  # A second start in the same DIR first stops whatever the first one left running.
  do_stop
  rm -rf "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log"
  mkdir -p "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log"
  mkdir -p "$DIR/spool/slurmd-$(hostname -s)"
  chmod 0711 "$DIR/munge"   # socket inside: others need x; the key itself is 0400
  chmod 0755 "$DIR" "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log"

  trap 'echo "slurm-local: start failed" >&2; show_logs; do_stop' ERR

  # munge: a fresh key and a private daemon on its own socket.
  dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$DIR/munge/munge.key"
  munged --force --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed" --num-threads=2 \
    || { show_logs; die "munged failed to start"; }
  munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET" >/dev/null \
    || { show_logs; do_stop; die "munge round trip failed"; }

  # slurm.conf: one node with this machine's real CPUs and memory, one partition.
  local host port cpus sockets cores threads mem
  host=$(hostname -s)
  port=$(pick_ports)
  local node
  node=$(slurmd -C | head -n 1)
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
  sockets=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$node")
  cores=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$node")
  threads=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$node")
  mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  : "${cpus:=$(nproc)}" "${sockets:=1}" "${cores:=$(nproc)}" "${threads:=1}" "${mem:=1000}"
  : > "$DIR/plugstack.conf"   # keep /etc/slurm/plugstack.conf out of it
  cat > "$CONF" <<EOF
# Written by tests/cluster/slurm-local.sh for a private loopback cluster in $DIR
ClusterName=ditlocal
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobContainerType=job_container/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=300
SlurmctldTimeout=120
SchedulerParameters=sched_interval=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  printf 'export SLURM_CONF=%q\n' "$CONF" > "$DIR/env.sh"
  export SLURM_CONF=$CONF

  # -i: ignore (and discard) saved state; daemons fork and write their pid files.
  slurmctld -f "$CONF" -i || { show_logs; do_stop; die "slurmctld failed to start"; }
  slurmd -f "$CONF" -N "$host" || { show_logs; do_stop; die "slurmd failed to start"; }

  local deadline=$((SECONDS + WAIT_S)) state=""
  while [ $SECONDS -lt $deadline ]; do
    pid_alive "$DIR/run/slurmctld.pid" || { sleep 0.5; pid_alive "$DIR/run/slurmctld.pid" \
      || { show_logs; do_stop; die "slurmctld exited"; }; }
    state=$(sinfo -h -N -n "$host" -o %T 2>/dev/null | head -n 1 || true)
    case $state in
      idle|idle\*) [ "$state" = idle ] && break ;;
      drain*|down*|fail*|inval*)
        scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  if [ "$state" != idle ]; then
    echo "slurm-local: node $host not idle after ${WAIT_S}s (state: '${state:-none}')" >&2
    sinfo -N -l >&2 2>&1 || true
    show_logs; do_stop
    exit 1
  fi
  trap - ERR
  local owner=${SLURM_LOCAL_OWNER_PID:-$PPID}
  setsid bash "$SELF" watch "$DIR/" "$owner" "${SLURM_LOCAL_MAX_S:-1800}" \
    </dev/null >>"$DIR/log/watchdog.log" 2>&1 &
  echo $! > "$DIR/run/watchdog.pid"
  echo "slurm-local: cluster up in $DIR (node $host, $cpus CPUs, ports $port/$((port + 1)))"
  echo "export SLURM_CONF=$CONF"
}

do_watch() {  # OWNER_PID MAX_S: stop the cluster once the owner is gone or time is up
  local owner=$1 max=$2 t0=$SECONDS
  while running "$owner" && [ $((SECONDS - t0)) -lt "$max" ] \
        && pid_alive "$DIR/run/slurmctld.pid"; do
    sleep 1
  done
  if pid_alive "$DIR/run/slurmctld.pid" || pid_alive "$DIR/run/munged.pid"; then
    echo "slurm-local: watchdog: owner $owner gone or ${max}s up, stopping the cluster in $DIR"
    do_stop from-watchdog
  fi
  rm -f "$DIR/run/watchdog.pid"
}

case $cmd in
  start) do_start ;;
  watch) do_watch "$3" "$4" ;;
  stop) do_stop ;;
  env) printf 'export SLURM_CONF=%q\n' "$CONF" ;;
  *) usage ;;
esac
