# --- fme-aa node bootstrap body (the variables above are rendered per node by components/bootstrap.py)
# Runs once at first boot as root (cloud-init user data). Idempotent: safe to re-run by hand with
#   sudo bash /var/lib/cloud/instance/user-data.txt
# It never prints a secret: `set -x` is never used and passwords only live in shell variables,
# the FME database config file (mode 600) and psql's environment.
set -euo pipefail
umask 077

LOG_FILE=/var/log/fme-aa-bootstrap.log
STATE_DIR=/var/lib/fme-aa
mkdir -p "$STATE_DIR"
exec > >(tee -a "$LOG_FILE") 2>&1

log() { printf '%s [fme-aa %s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$NODE_NAME" "$*"; }
fail() { log "ERROR: $*"; exit 1; }
trap 'fail "bootstrap stopped at line $LINENO (see $LOG_FILE)"' ERR

# IMDSv2 only: every metadata call carries a session token (the instance requires it).
imds() {
  local token
  token=$(curl -sSf -X PUT http://169.254.169.254/latest/api/token \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -sSf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

REGION=$(imds placement/region)
INSTANCE_ID=$(imds instance-id)
log "starting on $INSTANCE_ID in $REGION (share: $SHARE_KIND)"

install_packages() {
  if command -v dnf >/dev/null; then dnf install -y "$@"
  elif command -v yum >/dev/null; then yum install -y "$@"
  elif command -v apt-get >/dev/null; then apt-get update -y && apt-get install -y "$@"
  else fail "no package manager found to install: $*"
  fi
}

# --- 1. The node's own System Share --------------------------------------------------------------
stop_fme() {
  local svc
  for svc in "${FME_SERVICES[@]}"; do systemctl stop "$svc" 2>/dev/null || true; done
}

ebs_device() {
  # On Nitro instances the volume appears as NVMe with the volume id (no dash) as serial.
  local serial=${SHARE_VOLUME_ID//-/} dev tries=0
  while (( tries < 60 )); do
    for dev in "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}" /dev/sdf /dev/xvdf; do
      if [[ -b $dev ]]; then readlink -f "$dev"; return 0; fi
    done
    tries=$((tries + 1)); sleep 5
  done
  fail "EBS volume $SHARE_VOLUME_ID did not appear after 300 s"
}

share_mount_spec() {
  # Sets MOUNT_SOURCE, MOUNT_TYPE and MOUNT_OPTS for this node's share.
  if [[ $SHARE_KIND == ebs ]]; then
    local dev
    dev=$(ebs_device)
    if ! blkid "$dev" >/dev/null 2>&1; then
      log "formatting new EBS volume $SHARE_VOLUME_ID ($dev) as xfs"
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
  if mountpoint -q "$SYSTEM_SHARE_PATH"; then
    log "system share already mounted at $SYSTEM_SHARE_PATH"; return 0
  fi
  local staging=/mnt/fme-aa-share owner
  share_mount_spec
  mkdir -p "$SYSTEM_SHARE_PATH" "$staging"
  mount -t "$MOUNT_TYPE" -o "$MOUNT_OPTS" "$MOUNT_SOURCE" "$staging"
  # A new, empty share gets the AMI's initial share content (repository and resource folders
  # the installer created); a share that already holds this node's data is left as it is.
  if [[ ! -e $staging/.fme-aa-share ]]; then
    log "seeding the new share with the AMI's initial System Share layout"
    cp -a "$SYSTEM_SHARE_PATH/." "$staging/"
    printf '%s\n' "$NODE_NAME" >"$staging/.fme-aa-share"
  else
    owner=$(cat "$staging/.fme-aa-share")
    if [[ $owner != "$NODE_NAME" ]]; then
      umount "$staging"
      fail "this share belongs to node $owner, not $NODE_NAME: refusing to use it"
    fi
  fi
  umount "$staging"
  if ! grep -q " $SYSTEM_SHARE_PATH " /etc/fstab; then
    printf '%s %s %s %s 0 0\n' "$MOUNT_SOURCE" "$SYSTEM_SHARE_PATH" "$MOUNT_TYPE" "$MOUNT_OPTS" \
      >>/etc/fstab
  fi
  mount "$SYSTEM_SHARE_PATH"
  chown "$FME_SERVICE_USER:" "$SYSTEM_SHARE_PATH" || true
  log "system share mounted at $SYSTEM_SHARE_PATH"
}

# --- 2. The node's own database ------------------------------------------------------------------
read_master_secret() {
  # Credentials come from Secrets Manager at boot; they are never part of the user data.
  local json
  command -v aws >/dev/null || install_packages awscli
  json=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$DB_SECRET_ARN" \
    --query SecretString --output text)
  DB_MASTER_USER=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["username"])' <<<"$json")
  DB_MASTER_PASSWORD=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])' <<<"$json")
}

psql_master() {
  PGPASSWORD=$DB_MASTER_PASSWORD PGSSLMODE=require \
    "$PSQL" -v ON_ERROR_STOP=1 -h "$DB_HOST" -p "$DB_PORT" -U "$DB_MASTER_USER" -d "$DB_NAME" "$@"
}

psql_app() {
  PGPASSWORD=$DB_APP_PASSWORD PGSSLMODE=require \
    "$PSQL" -v ON_ERROR_STOP=1 -h "$DB_HOST" -p "$DB_PORT" -U "$DB_APP_USER" -d "$DB_NAME" "$@"
}

set_config_key() {
  # Replace KEY=... in FME's key=value config file, or append it. The value never hits argv of sed.
  local file=$1 key=$2 value=$3
  KEY=$key VALUE=$value python3 - "$file" <<'PY'
import os, sys
path, key, value = sys.argv[1], os.environ["KEY"], os.environ["VALUE"]
try:
    lines = open(path).read().splitlines()
except FileNotFoundError:
    lines = []
out, done = [], False
for line in lines:
    if line.split("=", 1)[0].strip() == key:
        if not done:
            out.append(f"{key}={value}")
            done = True
    else:
        out.append(line)
if not done:
    out.append(f"{key}={value}")
open(path, "w").write("\n".join(out) + "\n")
PY
}

configure_database() {
  command -v "$PSQL" >/dev/null || install_packages postgresql15 || install_packages postgresql-client
  read_master_secret
  local tries=0
  until psql_master -tAc 'select 1' >/dev/null 2>&1; do
    tries=$((tries + 1)); (( tries < 60 )) || fail "database $DB_HOST:$DB_PORT not reachable after 600 s"
    sleep 10
  done
  # FME connects as its own unprivileged role, with a password generated here that never leaves
  # this host. RDS rotates the master password; this role's password is unaffected by that.
  DB_APP_PASSWORD=$(openssl rand -hex 24)
  local verb=create
  if [[ $(psql_master -tAc "select 1 from pg_roles where rolname = '$DB_APP_USER'") == 1 ]]; then
    verb=alter
  fi
  # SQL goes in on stdin, so the password is never on a command line (visible in `ps`).
  psql_master -q <<SQL
$verb role "$DB_APP_USER" with login password '$DB_APP_PASSWORD';
grant all on database "$DB_NAME" to "$DB_APP_USER";
grant all on schema public to "$DB_APP_USER";
SQL
  local tables
  tables=$(psql_master -tAc "select count(*) from information_schema.tables where table_schema = 'public'")
  if [[ $tables == 0 ]]; then
    [[ -r $SCHEMA_SCRIPT ]] || fail "FME schema script $SCHEMA_SCRIPT not found (set fme.schemaScript)"
    log "empty database: creating the FME schema from $SCHEMA_SCRIPT"
    psql_app -q -f "$SCHEMA_SCRIPT"
  else
    log "database already holds $tables tables: schema left as it is"
  fi
  touch "$DB_CONFIG_FILE"
  chmod 600 "$DB_CONFIG_FILE"
  chown "$FME_SERVICE_USER:" "$DB_CONFIG_FILE" || true
  set_config_key "$DB_CONFIG_FILE" DB_TYPE postgresql
  set_config_key "$DB_CONFIG_FILE" DB_CONNECT_STR \
    "jdbc:postgresql://$DB_HOST:$DB_PORT/$DB_NAME?ssl=true&sslmode=require"
  set_config_key "$DB_CONFIG_FILE" DB_USER "$DB_APP_USER"
  set_config_key "$DB_CONFIG_FILE" DB_PASSWORD "$DB_APP_PASSWORD"
  unset DB_MASTER_PASSWORD DB_APP_PASSWORD
  log "FME now points at its own database $DB_HOST:$DB_PORT/$DB_NAME"
}

# --- 3. Restart FME on its own share and database ------------------------------------------------
restart_fme() {
  local svc
  if [[ -n $LOCAL_DB_SERVICE ]]; then
    systemctl disable --now "$LOCAL_DB_SERVICE" 2>/dev/null || true
  fi
  for svc in "${FME_SERVICES[@]}"; do
    systemctl enable "$svc" 2>/dev/null || true
    systemctl restart "$svc" || fail "service $svc failed to start (journalctl -u $svc)"
  done
  local tries=0
  until curl -sf "http://127.0.0.1:$HEALTH_PORT$HEALTH_PATH" >/dev/null; do
    tries=$((tries + 1)); (( tries < 90 )) || fail "FME health check $HEALTH_PATH not OK after 900 s"
    sleep 10
  done
}

stop_fme
mount_share
configure_database
restart_fme
date -u +%Y-%m-%dT%H:%M:%SZ >"$STATE_DIR/bootstrap.done"
log "bootstrap complete: FME is healthy on its own share and database"
