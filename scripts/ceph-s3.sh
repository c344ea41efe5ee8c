#!/usr/bin/env bash
# A throwaway real S3 server for the test suite: Ceph's RADOS Gateway (radosgw) from Debian's
# own packages, on a one-monitor, one-OSD cluster that lives in one folder and listens on
# 127.0.0.1 only. Nothing here is for production; it exists so that the S3 tests can run
# against a production S3 implementation as well as against moto's emulation.
#
#   scripts/ceph-s3.sh install          apt-get the packages when missing (needs root)
#   scripts/ceph-s3.sh start            a fresh cluster; prints the S3 endpoint when it answers
#   scripts/ceph-s3.sh stop             stop the daemons (gateway, OSD, monitor) and delete the data
#   scripts/ceph-s3.sh status           daemons, memory, and whether S3 answers
#   scripts/ceph-s3.sh env              the S3_TEST_* variables that point the tests at it
#   scripts/ceph-s3.sh run -- CMD...    start, run CMD with S3_TEST_* set, stop (also on failure)
#
# e.g. scripts/ceph-s3.sh run -- .venv/bin/python -m pytest -m s3
#
# Settings (environment):
#   CEPH_S3_DIR   data, logs, pid files          ${TMPDIR:-/tmp}/fgf-ceph-s3
#   CEPH_S3_PORT  the S3 endpoint's port          5401
#   CEPH_MON_PORT the monitor's port              5403
#   CEPH_OSD_PORTS first-last port of the OSD     5405-5410
#   S3_TEST_ACCESS_KEY / S3_TEST_SECRET_KEY       testing / testing (the test fixtures' default)
#   CEPH_S3_APT_UPDATED=1  install: the caller has just run apt-get update, do not repeat it
#
# Why a cluster at all: Debian 12 ships Ceph 16 (Pacific). Its radosgw cannot keep data
# anywhere but in RADOS (the SQLite "dbstore" backend came in later releases), so it needs a
# monitor and an OSD. One of each, without authentication, manager or systemd, starts in
# about 5 seconds and uses about 150 MB idle.
set -euo pipefail

DIR=${CEPH_S3_DIR:-${TMPDIR:-/tmp}/fgf-ceph-s3}
S3_PORT=${CEPH_S3_PORT:-5401}
MON_PORT=${CEPH_MON_PORT:-5403}
OSD_PORTS=${CEPH_OSD_PORTS:-5405-5410}
ACCESS_KEY=${S3_TEST_ACCESS_KEY:-testing}
SECRET_KEY=${S3_TEST_SECRET_KEY:-testing}
PACKAGES=(radosgw ceph-mon ceph-osd python3-rados uuid-runtime curl)
CONF=(-c "$DIR/ceph.conf")
# Order matters when stopping: a gateway whose OSD is gone waits for it for minutes, and an
# OSD whose monitor is gone hangs in its shutdown. So: gateway, OSD, monitor.
DAEMONS=(radosgw osd.0 mon.a)

say() { printf 'ceph-s3: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
clock() { date +%s.%N; }
elapsed() { awk -v t0="$1" -v t1="$(clock)" 'BEGIN { printf "%.1f s", t1 - t0 }'; }

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

cmd_install() {
  local need
  mapfile -t need < <(missing_packages)
  if [ ${#need[@]} -eq 0 ]; then
    say "packages present ($(radosgw --version 2>/dev/null | head -n1))"
    return 0
  fi
  command -v apt-get >/dev/null || die "apt-get not found: install ${need[*]} by hand"
  [ "$(id -u)" = 0 ] || die "not root: cannot install ${need[*]}"
  local t0; t0=$(clock)
  say "installing ${need[*]} (about 2 min, 270 MB)"
  # One update (none when the caller just ran one), then only what is needed: recommends
  # would pull in the whole Ceph stack.
  if [ -z "${CEPH_S3_APT_UPDATED:-}" ]; then
    apt-get update -q >/dev/null || die "apt-get update failed"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" \
    >/dev/null || die "apt-get install ${need[*]} failed"
  say "installed in $(elapsed "$t0")"
}

# Signal the daemons (in DAEMONS order, one at a time), wait up to 10 s each, then SIGKILL.
stop_daemons() {
  local signal=$1 name pidfile pid
  for name in "${DAEMONS[@]}"; do
    pidfile="$DIR/run/$name.pid"
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    kill "-$signal" "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || continue 2
      sleep 0.1
    done
    say "$name (pid $pid) did not stop in 10 s: killed"
    kill -KILL "$pid" 2>/dev/null || true
  done
}

cmd_stop() {
  [ -d "$DIR" ] || return 0
  stop_daemons TERM
  rm -rf "$DIR"
  say "stopped, data removed"
}

# A signed ListBuckets as the test user: proves the gateway, RADOS and the user all work.
s3_answers() {
  # curl signs with SigV4 but (7.88) does not send the payload hash header, which radosgw
  # requires for SigV4; UNSIGNED-PAYLOAD is the value S3 defines for that case.
  curl -fsS -o /dev/null --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$ACCESS_KEY:$SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    "http://127.0.0.1:$S3_PORT/"
}

wait_until() {  # wait_until SECONDS WHAT COMMAND...
  local limit=$1 what=$2 deadline; shift 2
  deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "no $what after ${limit} s (logs: $DIR/log)"
    sleep 0.2
  done
}

osd_is_up() { ceph "${CONF[@]}" osd stat -f json | grep -q '"num_up_osds":1'; }

write_config() {
  local fsid=$1
  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
# Loopback only, and only the ports we were given: msgr2 (no legacy v1 port, no IPv6).
public network = 127.0.0.0/8
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
ms bind port min = ${OSD_PORTS%-*}
ms bind port max = ${OSD_PORTS#*-}
# No cephx: there are no keyrings to make. With authentication "none", msgr2 must be
# allowed its "crc" mode on every connection kind, or the gateway keeps failing to reach
# the monitor (-13, permission denied) and never answers.
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
ms mon client mode = crc secure
ms client mode = crc secure
ms mon cluster mode = crc secure
ms mon service mode = crc secure
ms cluster mode = crc secure
ms service mode = crc secure
# Everything the daemons write stays in this folder.
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
crash dir = $DIR/crash
mon data = $DIR/mon.\$id
osd data = $DIR/osd.\$id
# One OSD: one copy of everything, few placement groups, no warnings about either, and a
# nearly full disk must not stop writes in the middle of a test run.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# The monitor normally batches map changes for a second; with seven pools to create that
# second is paid many times over at start-up.
paxos propose interval = 0.01
# BlueStore on a sparse 10 GiB file: it takes disk space only as objects arrive.
osd objectstore = bluestore
bluestore block size = 10737418240
bluestore block create = true
bluestore fsck on mkfs = false
# A small machine: under 1 GiB of cache, and a few threads rather than one per core.
osd memory target = 939524096
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw]
# tcp_nodelay: without it small responses wait for the client's delayed ACK (Nagle), and
# every small GET takes about 40 ms instead of 1-2 ms.
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw enable usage log = false
rgw thread pool size = 64
EOF
}

# The gateway's pools, made before it starts and in one librados session: otherwise the
# gateway creates them one by one on first use (one monitor round trip each) and start-up
# takes 20-26 s instead of about 5 s.
create_pools() {
  /usr/bin/python3 - "$DIR/ceph.conf" <<'PY'
import json
import sys

import rados

POOLS = (".rgw.root", "default.rgw.control", "default.rgw.meta", "default.rgw.log",
         "default.rgw.buckets.index", "default.rgw.buckets.data", "default.rgw.buckets.non-ec")
with rados.Rados(conffile=sys.argv[1], name="client.admin") as cluster:
    for pool in POOLS:
        for command in ({"prefix": "osd pool create", "pool": pool, "pg_num": 8, "pgp_num": 8},
                        {"prefix": "osd pool application enable", "pool": pool, "app": "rgw"}):
            status, _, error = cluster.mon_command(json.dumps(command), b"")
            if status:
                sys.exit(f"{command['prefix']} {pool}: {error}")
PY
}

cmd_start() {
  [ -z "$(missing_packages)" ] || die "missing packages: $(missing_packages | xargs) (run: $0 install)"
  cmd_stop  # never reuse a half-started cluster: always from nothing
  local t0 fsid osd_uuid osd_id
  t0=$(clock)
  mkdir -p "$DIR"/{run,log,crash,rgw,mon.a,osd.0}
  fsid=$(uuidgen)
  write_config "$fsid"

  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon "${CONF[@]}" --mkfs -i a --monmap "$DIR/monmap"
  ceph-mon "${CONF[@]}" -i a  # forks into the background and writes its pid file

  osd_uuid=$(uuidgen)
  osd_id=$(ceph "${CONF[@]}" --connect-timeout 30 osd new "$osd_uuid")
  [ "$osd_id" = 0 ] || die "the new OSD got id $osd_id, expected 0"
  ceph-osd "${CONF[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.out" 2>&1 \
    || die "OSD mkfs failed (see $DIR/log/osd-mkfs.out)"
  ceph-osd "${CONF[@]}" -i 0 2>>"$DIR/log/osd.start.err"  # forks too
  create_pools || die "could not create the gateway's pools"
  wait_until 60 "OSD up" osd_is_up

  # The gateway stays in the foreground (-f) so that we own its pid file.
  radosgw "${CONF[@]}" -n client.rgw -f >"$DIR/log/radosgw.out" 2>&1 &
  echo $! >"$DIR/run/radosgw.pid"
  # The user exists in RADOS, so it can be made while the gateway starts.
  radosgw-admin "${CONF[@]}" -n client.admin user create --uid=tests --display-name=tests \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DIR/log/user.json" \
    || die "radosgw-admin user create failed"
  wait_until 120 "S3 answer on 127.0.0.1:$S3_PORT" s3_answers
  say "S3 (radosgw) ready on 127.0.0.1:$S3_PORT after $(elapsed "$t0")"
}

cmd_status() {
  local name pidfile pid
  for name in "${DAEMONS[@]}"; do
    pidfile="$DIR/run/$name.pid"
    if [ -s "$pidfile" ] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
      echo "$name: pid $pid, $(( $(ps -o rss= -p "$pid") / 1024 )) MB resident"
    else
      echo "$name: not running"
    fi
  done
  if s3_answers; then echo "S3: answers on 127.0.0.1:$S3_PORT"; else echo "S3: no answer"; return 1; fi
}

cmd_env() {
  echo "export S3_TEST_ENDPOINT=127.0.0.1:$S3_PORT"
  echo "export S3_TEST_ACCESS_KEY=$ACCESS_KEY"
  echo "export S3_TEST_SECRET_KEY=$SECRET_KEY"
}

cmd_run() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "usage: $0 run -- COMMAND..."
  trap 'cmd_stop' EXIT  # the cluster goes away whatever the command's fate,
  trap 'exit 130' INT    # also when interrupted (a plain signal would skip the EXIT trap)
  trap 'exit 143' TERM
  cmd_start
  S3_TEST_ENDPOINT=127.0.0.1:$S3_PORT S3_TEST_ACCESS_KEY=$ACCESS_KEY \
    S3_TEST_SECRET_KEY=$SECRET_KEY "$@"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  run) shift; cmd_run "$@" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
