#!/usr/bin/env bash
# A one-node Slurm cluster on this machine: munge + slurmctld + slurmd on localhost, every file in one folder,
# no cgroups (proctrack/linuxproc, task/none). Try `executor.kind: slurm` with it; the test suite starts the
# same cluster through this script (tests/conftest.py). Needs root on Debian/Ubuntu with slurm-wlm and munge
# (`bash scripts/install.sh test` installs them).
#
#   bash scripts/slurm-local.sh start [DIR]    # start it; prints the `export SLURM_CONF=...` line to use
#   bash scripts/slurm-local.sh status [DIR]   # exit 0 and sinfo when it runs, 1 when it does not
#   bash scripts/slurm-local.sh stop [DIR]     # cancel every job, stop the daemons, remove DIR's files
#
# DIR (default: $CURATE_SLURM_DIR, else /tmp/curate-slurm) holds the config, the munge key and socket, the
# state, the pid and log files. Exit status 2: Slurm or root is missing here (nothing was started).
set -euo pipefail
cmd="${1:-}"
base="${2:-${CURATE_SLURM_DIR:-/tmp/curate-slurm}}"
conf="$base/slurm.conf"
m="$base/munge"
export SLURM_CONF="$conf"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

stop_pid() {  # TERM, then KILL after 15 s; wait until the process is gone (munged writes its seed file on exit)
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

running() { alive "$base/ctld/slurmctld.pid" && alive "$base/d/slurmd.pid"; }

start() {
  local missing="" b host
  for b in slurmctld slurmd munged mungekey sbatch sinfo runuser; do
    command -v "$b" >/dev/null || missing="$missing $b"
  done
  if [ -n "$missing" ]; then
    echo "Slurm is not installed here (missing$missing); bash scripts/install.sh test installs slurm-wlm and munge as root on Debian" >&2
    exit 2
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "the one-node Slurm cluster needs root (munged runs as the munge user, slurmd as root)" >&2
    exit 2
  fi
  if running; then
    echo "already running"; echo "export SLURM_CONF=$conf"; return 0
  fi
  mkdir -p "$m" "$base/ctld" "$base/d"
  chmod 755 "$base" "$m"
  chown munge:munge "$m"
  chown slurm:slurm "$base/ctld"
  [ -f "$m/munge.key" ] || runuser -u munge -- mungekey -c -k "$m/munge.key"
  alive "$m/munged.pid" || runuser -u munge -- munged --socket="$m/munge.socket" --key-file="$m/munge.key" \
    --pid-file="$m/munged.pid" --log-file="$m/munged.log" --seed-file="$m/munged.seed"
  host="$(hostname -s)"
  # cred_expire=30: a requeued job waits this long before it may start again (default 120 s)
  cat >"$conf" <<EOF
ClusterName=curatelocal
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=slurm
AuthType=auth/munge
AuthInfo=socket=$m/munge.socket,cred_expire=30
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$base/ctld
SlurmdSpoolDir=$base/d
SlurmctldPidFile=$base/ctld/slurmctld.pid
SlurmctldLogFile=$base/ctld/slurmctld.log
SlurmdPidFile=$base/d/slurmd.pid
SlurmdLogFile=$base/d/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  slurmctld -i
  sleep 2
  slurmd
  local state=""
  for _ in $(seq 120); do
    state="$(sinfo -h -o %T 2>/dev/null || true)"
    case "$state" in idle | mixed | allocated)
      echo "one-node Slurm cluster up (partition debug, $(nproc) CPUs; files in $base)"
      echo "export SLURM_CONF=$conf"
      return 0 ;;
    esac
    sleep 0.5
  done
  echo "Slurm did not come up (sinfo: ${state:-no answer}); logs:" >&2
  tail -n 20 "$base/ctld/slurmctld.log" "$base/d/slurmd.log" >&2 || true
  exit 1
}

stop() {
  if [ -f "$conf" ]; then
    scancel --full -u root >/dev/null 2>&1 || true
  fi
  stop_pid "$base/d/slurmd.pid"
  stop_pid "$base/ctld/slurmctld.pid"
  stop_pid "$m/munged.pid"
  rm -rf "$m" "$base/ctld" "$base/d" "$conf"
  rmdir "$base" 2>/dev/null || true
  echo "stopped"
}

status() {
  if running; then
    echo "running (export SLURM_CONF=$conf)"
    sinfo
  else
    echo "not running"
    return 1
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64 ;;
esac
