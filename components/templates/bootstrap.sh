# --- fme-aa node bootstrap body (the variables above are rendered per node by components/bootstrap.py)
# Runs once per instance as root, started by the user data's stub (cloud-init). Idempotent: safe
# to re-run by hand with  sudo rm -f /var/lib/fme-aa/bootstrap.done && sudo bash /var/lib/fme-aa/bootstrap.sh
# The steps and their order are those of the Windows script, after Safe's config_fmeflow_confd.ps1
# (safesoftware/fme-server-iac-templates). It never prints a secret: `set -x` is never used and
# passwords only live in shell variables, values-modified.yml (mode 600), the config files confd
# writes, and psql's environment.
set -Eeuo pipefail
umask 077

LOG_FILE=/var/log/fme-aa-bootstrap.log
STATE_DIR=/var/lib/fme-aa
DONE_FILE=$STATE_DIR/bootstrap.done
UNIT=fme-aa-fme.service
mkdir -p "$STATE_DIR"
exec > >(tee -a "$LOG_FILE") 2>&1

log() { printf '%s [fme-aa %s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$NODE_NAME" "$*"; }
fail() { log "ERROR: $* (log: $LOG_FILE)"; exit 1; }
trap 'fail "bootstrap stopped at line $LINENO"' ERR
step() { log "step: $1"; "$2"; }

# IMDSv2 only: every metadata call carries a session token (the instance requires it).
imds() {
  local token
  token=$(curl -sSf -X PUT http://169.254.169.254/latest/api/token \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -sSf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

install_packages() {
  if command -v dnf >/dev/null; then dnf install -y "$@"
  elif command -v yum >/dev/null; then yum install -y "$@"
  elif command -v apt-get >/dev/null; then apt-get update -y && apt-get install -y "$@"
  else fail "no package manager found to install: $*"
  fi
}

# --- 1. the release the image really has ---------------------------------------------------------
confirm_release() {
  [[ -r $VERSION_FILE ]] || fail "$VERSION_FILE not found: is FME installed in $INSTALL_DIR (fme.installDir)?"
  local installed
  installed=$(sed -nE 's/^[[:space:]]*VERSION[[:space:]]*=[[:space:]]*([0-9]+)\.([0-9]+).*/\1.\2/p' \
    "$VERSION_FILE" | head -n 1)
  [[ -n $installed ]] || fail "$VERSION_FILE has no VERSION= line"
  if [[ $installed != "$FME_VERSION" ]]; then
    fail "the image has FME $installed but fme.version is $FME_VERSION: set fme.version to $installed"
  fi
  log "the image has FME $installed, as fme.version says"
}

# --- 2. FME stopped (Linux installs ship start/stop scripts, no systemd unit) -------------------
stop_fme() {
  if systemctl is-active --quiet "$UNIT"; then systemctl stop "$UNIT"; fi
  [[ -x $STOP_SCRIPT ]] || fail "$STOP_SCRIPT not found: is FME $FME_VERSION installed in $INSTALL_DIR?"
  "$STOP_SCRIPT" || log "note: $STOP_SCRIPT exited non-zero (FME was probably not running)"
}

# --- 3. this node's own share: EBS (xfs, formatted once) or EFS (TLS + IAM), seeded once ---------
ebs_device() {
  # On Nitro instances the volume appears as NVMe with the volume id (no dash) as serial.
  local serial=${SHARE_VOLUME_ID//-/} dev tries=0
  while (( tries < 60 )); do
    for dev in "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}" /dev/sdf /dev/xvdf; do
      if [[ -b $dev ]]; then readlink -f "$dev"; return 0; fi
    done
    tries=$((tries + 1)); sleep 5
  done
  fail "EBS volume $SHARE_VOLUME_ID did not appear within 300 s"
}

share_mount_spec() {
  # Sets MOUNT_SOURCE, MOUNT_TYPE and MOUNT_OPTS for this node's share.
  if [[ $SHARE_KIND == ebs ]]; then
    local dev
    dev=$(ebs_device)
    if ! blkid "$dev" >/dev/null 2>&1; then
      log "formatting EBS volume $SHARE_VOLUME_ID ($dev) as xfs (it has no file system yet)"
      mkfs.xfs -q "$dev"
    fi
    MOUNT_SOURCE="UUID=$(blkid -s UUID -o value "$dev")"
    MOUNT_TYPE=xfs
    MOUNT_OPTS=defaults,nofail
  else
    command -v mount.efs >/dev/null || install_packages amazon-efs-utils
    # tls = encrypted in transit (the file system policy denies anything else);
    # iam = the instance role's ClientMount/ClientWrite on this file system only.
    MOUNT_SOURCE="$SHARE_FILE_SYSTEM_ID:/"
    MOUNT_TYPE=efs
    MOUNT_OPTS="_netdev,noresvport,tls,iam,accesspoint=$SHARE_ACCESS_POINT_ID"
  fi
}

mount_share() {
  local staging=/mnt/fme-aa-share owner
  if mountpoint -q "$SYSTEM_SHARE_PATH"; then
    if [[ -e $SYSTEM_SHARE_PATH/.fme-aa-share ]]; then
      owner=$(cat "$SYSTEM_SHARE_PATH/.fme-aa-share")
      [[ $owner == "$NODE_NAME" ]] || fail "this share belongs to node $owner, not to $NODE_NAME"
      log "share $SYSTEM_SHARE_PATH is this node's (already mounted)"; return 0
    fi
    umount "$SYSTEM_SHARE_PATH"  # mounted by an earlier run that stopped before seeding it
  fi
  share_mount_spec
  mkdir -p "$SYSTEM_SHARE_PATH" "$staging"
  mount -t "$MOUNT_TYPE" -o "$MOUNT_OPTS" "$MOUNT_SOURCE" "$staging"
  # A new, empty share gets the image's initial share content (Safe copies it the same way);
  # a share that already holds this node's data is left as it is.
  if [[ ! -e $staging/.fme-aa-share ]]; then
    [[ -d $INITIAL_SHARE_DIR ]] || { umount "$staging"; fail "the image has no initial share content at $INITIAL_SHARE_DIR (fme.initialShareDir)"; }
    log "seeding the new share with the image's $INITIAL_SHARE_DIR"
    cp -a "$INITIAL_SHARE_DIR/." "$staging/"
    chown -R "$FME_SERVICE_USER:" "$staging" || log "note: no account $FME_SERVICE_USER to own the share"
    printf '%s\n' "$NODE_NAME" >"$staging/.fme-aa-share"
  else
    owner=$(cat "$staging/.fme-aa-share")
    if [[ $owner != "$NODE_NAME" ]]; then
      umount "$staging"
      fail "this share belongs to node $owner, not to $NODE_NAME"
    fi
  fi
  umount "$staging"
  if ! grep -q " $SYSTEM_SHARE_PATH " /etc/fstab; then
    printf '%s %s %s %s 0 0\n' "$MOUNT_SOURCE" "$SYSTEM_SHARE_PATH" "$MOUNT_TYPE" "$MOUNT_OPTS" \
      >>/etc/fstab
  fi
  mount "$SYSTEM_SHARE_PATH"
  log "share $SYSTEM_SHARE_PATH mounted"
}

# --- 4. the RDS master credentials, at boot (never in user data) ---------------------------------
read_master_secret() {
  local json region
  region=$(imds placement/region)
  command -v aws >/dev/null || install_packages awscli
  json=$(aws secretsmanager get-secret-value --region "$region" --secret-id "$DB_SECRET_ARN" \
    --query SecretString --output text)
  DB_MASTER_USER=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["username"])' <<<"$json")
  DB_MASTER_PASSWORD=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])' <<<"$json")
  # FME's own role gets a password made here; RDS rotating the master password leaves it alone.
  FME_DB_PASSWORD=$(openssl rand -hex 24)
}

# --- 5. values-modified.yml beside values.yml, then confd once -----------------------------------
value_of() {
  case $1 in
    private_ip) printf '%s' "$PRIVATE_IP" ;;
    external_host) printf '%s' "$EXTERNAL_HOST" ;;
    external_port) printf '%s' "$EXTERNAL_PORT" ;;
    web_port) printf '%s' "$WEB_PORT" ;;
    db_host) printf '%s' "$DB_HOST" ;;
    db_port) printf '%s' "$DB_PORT" ;;
    db_password) printf '%s' "$FME_DB_PASSWORD" ;;
    jdbc_url) printf 'jdbc:postgresql://%s:%s/%s' "$DB_HOST" "$DB_PORT" "$DB_NAME" ;;
    log_prefix) printf '%s_' "$PRIVATE_IP" ;;
    unused_password) openssl rand -hex 24 ;;
    share_dir) printf '%s' "$SYSTEM_SHARE_PATH" ;;
    true) printf 'true' ;;
    *) return 1 ;;
  esac
}

update_fme_config() {
  local entry key value
  PRIVATE_IP=$(imds local-ipv4)
  install -m 600 /dev/null "$VALUES_MODIFIED_FILE"
  for entry in "${VALUES_KEYS[@]}"; do
    key=${entry%%=*}
    value=$(value_of "${entry#*=}") || fail "no value for $key (${entry#*=})"
    value=${value//\\/\\\\}
    printf '%s: "%s"\n' "$key" "${value//\"/\\\"}" >>"$VALUES_MODIFIED_FILE"
  done
  # values.yml ships with placeholders confd cannot read; values-modified.yml sets the real values.
  sed -i -e 's/<<DATABASE_PASSWORD>>/"see-values-modified"/' \
    -e 's/<<POSTGRES_ROOT_PASSWORD>>/"see-values-modified"/' "$VALUES_FILE"
  # confd writes FME's config files, which FME's own account must read: not under umask 077.
  (umask 022 && cd "$(dirname "$CONFD")" && "$CONFD" "${CONFD_ARGS[@]}") || fail "confd failed"
}

# --- 6. TLS and FME's role in the two database config files confd wrote -------------------------
set_database_tls() {
  local file
  for file in "${DB_CONFIG_FILES[@]}"; do
    [[ -f $file ]] || fail "$file not found after confd"
    sed -i -E -e "s/^[[:space:]]*DB_USERNAME[[:space:]]*=.*/DB_USERNAME=$DB_USER/" \
      -e '/jdbc:postgresql:\/\//{/sslmode=/!{/\?/s/$/\&sslmode=require/;/\?/!s/$/?sslmode=require/}}' "$file"
  done
}

# --- 7. role, database and schema with FME's own scripts, only where the schema is missing -------
psql_as() {
  # psql_as USER PASSWORD DATABASE ARGS...: TLS required, the password only in psql's environment.
  local user=$1 password=$2 database=$3
  shift 3
  PGPASSWORD=$password PGSSLMODE=require psql -X -w -v ON_ERROR_STOP=1 -h "$DB_HOST" -p "$DB_PORT" \
    -U "$user" -d "$database" "$@"
}

master_query() {
  psql_as "$DB_MASTER_USER" "$DB_MASTER_PASSWORD" "$1" -tAc "$2" || fail "query on $1 failed"
}

fme_script() {
  # fme_script USER PASSWORD DATABASE FILE: one of FME's own SQL scripts.
  psql_as "$1" "$2" "$3" -f "$SQL_DIR/$4" || fail "$4 failed"
}

initialize_database() {
  command -v psql >/dev/null || install_packages postgresql15 || install_packages postgresql-client
  local tries=0 count
  until pg_isready -h "$DB_HOST" -p "$DB_PORT" -t 5 >/dev/null; do
    tries=$((tries + 1)); (( tries < 60 )) || fail "database $DB_HOST:$DB_PORT not ready after 600 s"
    sleep 10
  done
  # Each of FME's scripts runs only while what it creates is missing, so when the schema
  # (fme_config_props) exists none runs, and a run that stopped half-way resumes.
  count=$(master_query postgres "select count(*) from pg_roles where rolname = '$DB_USER'")
  if [[ $count != 1 ]]; then
    fme_script "$DB_MASTER_USER" "$DB_MASTER_PASSWORD" postgres postgresql_createUser.sql
  fi
  # createUser.sql gives the role a known password; it gets this node's own before any use.
  # SQL goes in on stdin, so the password is never on a command line (visible in `ps`).
  if ! psql_as "$DB_MASTER_USER" "$DB_MASTER_PASSWORD" postgres -q >/dev/null 2>&1 <<SQL
alter role "$DB_USER" with login password '$FME_DB_PASSWORD';
SQL
  then
    fail "could not set the password of role $DB_USER"
  fi
  count=$(master_query postgres "select count(*) from pg_database where datname = '$DB_NAME'")
  if [[ $count != 1 ]]; then
    # PostgreSQL 16 lets the RDS admin create a database owned by the FME role only as a
    # member of it (our inference; createDB.sql's content is not public).
    master_query postgres "grant \"$DB_USER\" to current_user" >/dev/null
    fme_script "$DB_MASTER_USER" "$DB_MASTER_PASSWORD" postgres postgresql_createDB.sql
  fi
  count=$(psql_as "$DB_USER" "$FME_DB_PASSWORD" "$DB_NAME" -tAc \
    "select count(*) from information_schema.tables where table_name = 'fme_config_props'") \
    || fail "cannot read $DB_NAME as $DB_USER"
  if [[ $count == 1 ]]; then
    log "the FME schema exists in $DB_NAME (fme_config_props): createSchema.sql is not run again"
  else
    fme_script "$DB_USER" "$FME_DB_PASSWORD" "$DB_NAME" postgresql_createSchema.sql
  fi
  unset DB_MASTER_PASSWORD FME_DB_PASSWORD
}

# --- 8/9. FME started (by a unit of ours, after the share is mounted), then healthy --------------
start_fme() {
  cat >"/etc/systemd/system/$UNIT" <<UNIT
[Unit]
Description=FME on this node's own share and database (installed by fme-aa)
Wants=network-online.target
After=network-online.target
RequiresMountsFor=$SYSTEM_SHARE_PATH

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$START_SCRIPT
ExecStop=$STOP_SCRIPT
TimeoutStartSec=900

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable "$UNIT"
  systemctl restart "$UNIT" || fail "$UNIT failed to start (journalctl -u $UNIT)"
}

wait_healthy() {
  local tries=0
  until curl -sf "$HEALTH_URL" >/dev/null; do
    tries=$((tries + 1)); (( tries < 90 )) || fail "$HEALTH_URL did not answer 200 within 900 s"
    sleep 10
  done
}

# bootstrap.done names the instance it was written on: an instance made from an image of a
# configured node (ami.fromInstance) carries that node's file, but is a new machine that must
# still be pointed at its own share and database.
configured_here() {
  [[ -e $DONE_FILE ]] || return 1
  local here written
  here=$(imds instance-id)
  read -r written _ <"$DONE_FILE" || true
  [[ $written == "$here" ]] && return 0
  log "bootstrap.done was written on ${written:-an unknown instance}, not on $here: a clone, configuring it"
  return 1
}

if configured_here; then
  log "already configured on $(cat "$DONE_FILE"); nothing to do"
  exit 0
fi
step "check the installed FME release" confirm_release
step "stop FME" stop_fme
step "bring up this node's own share" mount_share
step "read the database master secret" read_master_secret
step "write values-modified.yml and run confd" update_fme_config
step "require TLS for FME's database connections" set_database_tls
step "create the FME database with FME's own scripts" initialize_database
step "start FME" start_fme
step "wait for FME's liveness health check" wait_healthy
printf '%s %s\n' "$(imds instance-id)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$DONE_FILE"
log "bootstrap complete: FME is healthy on its own share and database"
