#!/bin/sh
# PostgreSQL for the tests: a primary and a streaming replica of it, on loopback only.
#
#   sh scripts/postgres.sh         install if missing, start (or reuse) both, check replication,
#                                  print the URLs
#   sh scripts/postgres.sh env     print `export` lines for the test variables (eval them)
#   sh scripts/postgres.sh stop    stop both (the data stays; delete the directory to start over)
#   sh scripts/postgres.sh restart-primary
#                                  crash the primary (immediate shutdown) and start it again: what
#                                  `make chaos` does once mid-run
#
# PostgreSQL comes from Debian's `postgresql` package (installed with apt-get when missing and
# running as root). The clusters are the script's own, not the system's: initdb'd under
# target/postgres/ (BREAKWATER_PG_DIR), served on 127.0.0.1:55432 and :55433
# (BREAKWATER_PG_PORT, BREAKWATER_PG_REPLICA_PORT) with Unix sockets off, tuned for tests
# (fsync off: the data is disposable). A second run finds both running and only re-checks them.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

PRIMARY_PORT=${BREAKWATER_PG_PORT:-55432}
REPLICA_PORT=${BREAKWATER_PG_REPLICA_PORT:-55433}
BASE=${BREAKWATER_PG_DIR:-$PWD/target/postgres}
case $BASE in /*) ;; *) BASE=$PWD/$BASE ;; esac
SUPERUSER=breakwater
REPLICATION_USER=replicator
SLOT=breakwater_replica
# Upper bounds on polling loops (tenths of a second); readiness ends them early.
READY_TENTHS=600
REPLICATED_TENTHS=300

# --- Where the server binaries are ------------------------------------------------------------

# Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<major>/bin; take the
# newest major there, else whatever PATH has.
find_bindir() {
  if [ -n "${BREAKWATER_PG_BINDIR:-}" ]; then
    [ -x "$BREAKWATER_PG_BINDIR/initdb" ] && echo "$BREAKWATER_PG_BINDIR"
    return 0
  fi
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n | tail -n 1)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then
    echo "$newest"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

install_postgres() {
  missing="PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) were not found"
  [ -z "${BREAKWATER_PG_BINDIR:-}" ] ||
    die "$missing in BREAKWATER_PG_BINDIR=$BREAKWATER_PG_BINDIR"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "$missing; install Debian's package: sudo apt-get install -y postgresql (or set BREAKWATER_PG_BINDIR to a PostgreSQL bin directory)"
  fi
  step "installing PostgreSQL (apt-get install -y postgresql)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed; install the 'postgresql' package by hand"
  apt-get install -y -qq postgresql >/dev/null ||
    die "apt-get install -y postgresql failed; install the 'postgresql' package by hand"
}

# --- Running things as the clusters' owner ----------------------------------------------------

# initdb and the server refuse to run as root; as root, the clusters belong to `postgres`.
if [ "$(id -u)" = 0 ]; then
  OWNER=postgres
  as_owner() { runuser -u "$OWNER" -- "$@"; }
else
  OWNER=$(id -un)
  as_owner() { "$@"; }
fi

# psql_at PORT SQL: SQL as the superuser over TCP, bare output, notices off. Never prompts
# (-w): a wrong password is an error, not a hang.
psql_at() {
  PGPASSWORD=$SUPERUSER_PASSWORD PGCONNECT_TIMEOUT=5 PGOPTIONS='-c client_min_messages=warning' \
    "$BIN/psql" -X -w -q -A -t \
    -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U "$SUPERUSER" -d postgres -c "$2" </dev/null
}

# running DATADIR: whether a server runs on that data directory.
running() { [ -f "$1/PG_VERSION" ] && as_owner "$BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

# wait_ready NAME PORT: poll pg_isready until the server accepts connections.
wait_ready() {
  tries=0
  until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$2" -t 1; do
    tries=$((tries + 1))
    [ "$tries" -lt "$READY_TENTHS" ] ||
      die "the $1 on 127.0.0.1:$2 did not become ready (log: $BASE/log/$1.log)"
    sleep 0.1
  done
}

# port_free NAME PORT ENVVAR: fail when another server already answers on PORT.
port_free() {
  status=0
  "$BIN/pg_isready" -q -h 127.0.0.1 -p "$2" -t 1 || status=$?
  # 0: accepting, 1: rejecting (starting up); 2: no answer; 3: no attempt made.
  [ "$status" -ge 2 ] ||
    die "port $2 already has a PostgreSQL server that is not this $1 ($BASE/$1); set $3 to another port"
}

# start NAME DATADIR PORT: start a cluster (pg_ctl -w waits until it accepts connections).
# The server must not inherit the lock's descriptor, or it would hold the lock for good.
start() {
  as_owner "$BIN/pg_ctl" -D "$2" -l "$BASE/log/$1.log" -o "-p $3" -w -t 60 start >/dev/null 9>&- ||
    die "the $1 did not start (log: $BASE/log/$1.log; is port $3 free?)"
}

# reuse NAME DATADIR PORT ENVVAR: a running cluster is reused if it listens where asked.
reuse() {
  actual=$(sed -n 4p "$2/postmaster.pid")
  [ "$actual" = "$3" ] ||
    die "the $1 runs on port $actual, not $3 ($4); stop it first: sh scripts/postgres.sh stop"
  note "$1: running on 127.0.0.1:$3 (reused)"
}

stop_cluster() {
  if running "$2"; then
    step "stopping the $1 ($2)"
    as_owner "$BIN/pg_ctl" -D "$2" -m fast -w stop >/dev/null
  else
    note "$1: not running"
  fi
}

url() { echo "postgres://$SUPERUSER:$SUPERUSER_PASSWORD@127.0.0.1:$1/postgres"; }

load_secrets() {
  [ -f "$BASE/secrets" ] || die "no clusters under $BASE yet; run: sh scripts/postgres.sh"
  . "$BASE/secrets"
}

# --- Subcommands -------------------------------------------------------------------------------

command=${1:-start}
case $command in
  start | stop | env | restart-primary) ;;
  *) die "unknown subcommand '$command' (expected: start, stop, env or restart-primary)" ;;
esac

if [ "$command" = env ]; then
  load_secrets
  echo "export BREAKWATER_TEST_POSTGRES_URL='$(url "$PRIMARY_PORT")'"
  echo "export BREAKWATER_TEST_POSTGRES_REPLICA_URL='$(url "$REPLICA_PORT")'"
  exit 0
fi

BIN=$(find_bindir)
if [ -z "$BIN" ]; then
  [ "$command" = stop ] && { note "PostgreSQL is not installed: nothing to stop"; exit 0; }
  install_postgres
  BIN=$(find_bindir)
  [ -n "$BIN" ] || die "the 'postgresql' package installed no initdb under /usr/lib/postgresql/*/bin"
fi
for tool in initdb pg_ctl pg_basebackup pg_isready psql; do
  [ -x "$BIN/$tool" ] || die "$BIN/$tool is missing; install Debian's 'postgresql' package"
done
if [ "$OWNER" = postgres ]; then
  id postgres >/dev/null 2>&1 ||
    die "running as root, but there is no 'postgres' user to own the clusters (initdb refuses root); install Debian's 'postgresql' package or run as an unprivileged user"
  command -v runuser >/dev/null 2>&1 || die "'runuser' is missing; install Debian's 'util-linux' package"
fi

if [ "$command" = stop ] && [ ! -d "$BASE" ]; then
  note "no clusters under $BASE: nothing to stop"
  exit 0
fi
mkdir -p "$BASE/log"
[ "$OWNER" = postgres ] && chown "$OWNER" "$BASE" "$BASE/log"
as_owner test -w "$BASE" ||
  die "user '$OWNER' cannot write to $BASE (a parent directory is closed to it?); set BREAKWATER_PG_DIR to a directory it can reach, e.g. /tmp/breakwater-postgres"
# Two runs at once (two `make test`s) would race on initdb and the base backup.
if command -v flock >/dev/null 2>&1; then
  exec 9>>"$BASE/lock"
  flock -w 300 9 || die "another scripts/postgres.sh holds $BASE/lock"
fi
PRIMARY=$BASE/primary
REPLICA=$BASE/replica

if [ "$command" = stop ]; then
  stop_cluster replica "$REPLICA"
  stop_cluster primary "$PRIMARY"
  exit 0
fi

if [ "$command" = restart-primary ]; then
  running "$PRIMARY" || die "the primary is not running; start it first: sh scripts/postgres.sh"
  step "restarting the primary: an immediate shutdown (no checkpoint, like a crash), then recovery"
  as_owner "$BIN/pg_ctl" -D "$PRIMARY" -l "$BASE/log/primary.log" -o "-p $PRIMARY_PORT" \
    -m immediate -w -t 60 restart >/dev/null 9>&- ||
    die "the primary did not come back (log: $BASE/log/primary.log)"
  wait_ready primary "$PRIMARY_PORT"
  exit 0
fi

version=$("$BIN/pg_ctl" --version | awk '{print $3}')
step "PostgreSQL $version ($BIN), clusters under $BASE"
# Data directories only open with the major version that made them.
if [ -f "$PRIMARY/PG_VERSION" ] && [ "$(cat "$PRIMARY/PG_VERSION")" != "${version%%.*}" ]; then
  die "$PRIMARY was made by PostgreSQL $(cat "$PRIMARY/PG_VERSION"), this is $version; stop the old servers and delete $BASE"
fi

# Passwords: random, made once, readable only by whoever runs the tests.
if [ ! -f "$BASE/secrets" ]; then
  rm -rf "$PRIMARY" "$REPLICA" # clusters without their passwords are of no use
  (
    umask 077
    {
      echo "SUPERUSER_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
      echo "REPLICATION_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    } >"$BASE/secrets.new"
  )
  mv "$BASE/secrets.new" "$BASE/secrets"
fi
load_secrets

# The primary: initdb once, then start it unless it runs.
if [ ! -f "$PRIMARY/PG_VERSION" ]; then
  step "creating the primary cluster ($PRIMARY)"
  rm -rf "$PRIMARY" "$REPLICA"
  pwfile=$BASE/superuser.password
  (umask 077 && echo "$SUPERUSER_PASSWORD" >"$pwfile")
  [ "$OWNER" = postgres ] && chown "$OWNER" "$pwfile"
  as_owner "$BIN/initdb" -D "$PRIMARY" -U "$SUPERUSER" --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C \
    >"$BASE/log/initdb.log" 2>&1 || { rm -f "$pwfile"; die "initdb failed (log: $BASE/log/initdb.log)"; }
  rm -f "$pwfile"
  # Appended settings win over initdb's; the replica's base backup copies this file.
  as_owner sh -c "cat >>'$PRIMARY/postgresql.conf'" <<'EOF'

# scripts/postgres.sh: a disposable test cluster, reachable over loopback TCP only.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
# Each test origin has a pool of up to 16; tests run in parallel.
max_connections = 300
# The data is thrown away; durability only slows CREATE DATABASE and every commit.
fsync = off
synchronous_commit = off
# Every test creates and drops a database; recycle the WAL that leaves (on the replica too)
# sooner than the 1 GB default.
max_wal_size = '256MB'
EOF
fi

if running "$PRIMARY"; then
  reuse primary "$PRIMARY" "$PRIMARY_PORT" BREAKWATER_PG_PORT
else
  port_free primary "$PRIMARY_PORT" BREAKWATER_PG_PORT
  step "starting the primary on 127.0.0.1:$PRIMARY_PORT"
  start primary "$PRIMARY" "$PRIMARY_PORT"
fi
wait_ready primary "$PRIMARY_PORT"
[ "$(psql_at "$PRIMARY_PORT" 'SELECT pg_is_in_recovery()')" = f ] ||
  die "the server on 127.0.0.1:$PRIMARY_PORT is in recovery; it is not the primary"

# The replica: a base backup of the primary (-R writes primary_conninfo and standby.signal),
# streaming through a replication slot so the primary keeps the WAL it has not received yet.
# Rebuilt when missing, or when the primary it follows moved to another port.
if [ -f "$REPLICA/standby.signal" ] &&
  grep -Eq "port=$PRIMARY_PORT( |')" "$REPLICA/postgresql.auto.conf" 2>/dev/null; then
  :
else
  if running "$REPLICA"; then
    as_owner "$BIN/pg_ctl" -D "$REPLICA" -m fast -w stop >/dev/null
  fi
  step "creating the replica ($REPLICA): pg_basebackup -R -X stream from the primary"
  rm -rf "$REPLICA"
  if [ "$(psql_at "$PRIMARY_PORT" \
    "SELECT count(*) FROM pg_roles WHERE rolname = '$REPLICATION_USER'")" = 0 ]; then
    psql_at "$PRIMARY_PORT" \
      "CREATE ROLE $REPLICATION_USER WITH REPLICATION LOGIN PASSWORD '$REPLICATION_PASSWORD'"
  fi
  psql_at "$PRIMARY_PORT" "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
    WHERE slot_name = '$SLOT' AND NOT active" >/dev/null
  # PGPASSWORD and -w: pg_basebackup asking for a password with no terminal would hang forever.
  PGPASSWORD=$REPLICATION_PASSWORD as_owner "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" \
    -U "$REPLICATION_USER" -w -D "$REPLICA" -R -X stream -C -S "$SLOT" --checkpoint=fast \
    </dev/null >"$BASE/log/basebackup.log" 2>&1 ||
    die "pg_basebackup failed (log: $BASE/log/basebackup.log)"
fi

if running "$REPLICA"; then
  reuse replica "$REPLICA" "$REPLICA_PORT" BREAKWATER_PG_REPLICA_PORT
else
  port_free replica "$REPLICA_PORT" BREAKWATER_PG_REPLICA_PORT
  step "starting the replica on 127.0.0.1:$REPLICA_PORT"
  start replica "$REPLICA" "$REPLICA_PORT"
fi
wait_ready replica "$REPLICA_PORT"

# Proof that it replicates: the replica is in recovery, and a row written now on the primary
# shows up on it.
[ "$(psql_at "$REPLICA_PORT" 'SELECT pg_is_in_recovery()')" = t ] ||
  die "the replica on 127.0.0.1:$REPLICA_PORT is not in recovery (log: $BASE/log/replica.log)"
token=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
psql_at "$PRIMARY_PORT" "CREATE TABLE IF NOT EXISTS breakwater_replication_check \
  (token text PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now())" >/dev/null
psql_at "$PRIMARY_PORT" "DELETE FROM breakwater_replication_check; \
  INSERT INTO breakwater_replication_check (token) VALUES ('$token')" >/dev/null
tries=0
until [ "$(psql_at "$REPLICA_PORT" \
  "SELECT count(*) FROM breakwater_replication_check WHERE token = '$token'" 2>/dev/null)" = 1 ]; do
  tries=$((tries + 1))
  [ "$tries" -lt "$REPLICATED_TENTHS" ] ||
    die "a row written on the primary did not reach the replica within $((REPLICATED_TENTHS / 10)) s (logs: $BASE/log/)"
  sleep 0.1
done
note "replication: the replica is in recovery and has a row written on the primary just now"
note "primary: $(url "$PRIMARY_PORT")"
note "replica: $(url "$REPLICA_PORT")"
note "for the tests: eval \"\$(sh scripts/postgres.sh env)\"; stop: sh scripts/postgres.sh stop"
