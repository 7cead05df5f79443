# Sourced by .ci/run: a throwaway PostgreSQL server on loopback for the distributed tests.
# Exports SCALER_TEST_POSTGRES (the URL) and defines stop_postgres.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# The postgres user may not be allowed into the checkout's folder: run its commands from /.
pg_su() { (cd / && su postgres -c "$1"); }
PGDATA_DIR=$(mktemp -d /tmp/scaler-pg.XXXXXX)
chown postgres "$PGDATA_DIR"
chmod 700 "$PGDATA_DIR"
# A free loopback port, so a server already running here cannot collide with this one.
PGPORT_CI=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PGPASS_CI=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
pg_su "$PGBIN/initdb -D $PGDATA_DIR/data -U postgres --auth-local=trust \
  --auth-host=scram-sha-256" >/dev/null
pg_su "$PGBIN/pg_ctl -D $PGDATA_DIR/data -l $PGDATA_DIR/log -w start \
  -o '-c listen_addresses=127.0.0.1 -p $PGPORT_CI -k $PGDATA_DIR -c max_connections=200'" >/dev/null
pg_su "psql -q -h $PGDATA_DIR -p $PGPORT_CI -U postgres \
  -c \"CREATE USER scaler PASSWORD '$PGPASS_CI'\" -c 'CREATE DATABASE scaler_test OWNER scaler'"
export SCALER_TEST_POSTGRES="postgresql://scaler:$PGPASS_CI@127.0.0.1:$PGPORT_CI/scaler_test"
stop_postgres() {
  pg_su "$PGBIN/pg_ctl -D $PGDATA_DIR/data -m fast -w stop" >/dev/null 2>&1 || true
  rm -rf "$PGDATA_DIR"
}
