#!/bin/sh
# One-shot: configure OpenBao like vault_async.devstack does, then write each AppRole's
# secret_id where its reader finds it (VAULT_SECRET_ID_FILE): $SECRET_ID_DIR (default
# /run/approle) for the service, $MIGRATOR_SECRET_ID_DIR (default /run/approle-migrator) for
# the migrations. Each file is 0600, owned by APP_UID:APP_GID (the uid:gid those readers run
# as), and replaced whole: written beside it, then renamed over it. Safe to re-run; each run
# issues new secret_ids (earlier ones stay valid until they expire or are destroyed).
set -eu
umask 077

SECRET_ID_DIR="${SECRET_ID_DIR:-/run/approle}"
MIGRATOR_SECRET_ID_DIR="${MIGRATOR_SECRET_ID_DIR:-/run/approle-migrator}"

fail() {
    echo "vault-init: $*" >&2
    exit 2
}

# Every setting is checked before anything changes; no value is printed but uids and paths.
for name in BAO_ADDR BAO_TOKEN PG_HOST PG_PORT VAULT_ADMIN_PASSWORD APPROLE_ROLE_ID \
    MIGRATOR_APPROLE_ROLE_ID DB_TTL DB_MAX_TTL; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || fail "$name is not set"
done
for name in APP_UID APP_GID; do
    eval "value=\${$name:-}"
    case "$value" in
        '' | *[!0-9]*) fail "$name='$value': set the numeric id the service and migrations run as" ;;
    esac
done
for name in SECRET_ID_DIR MIGRATOR_SECRET_ID_DIR; do
    eval "value=\$$name"
    [ -d "$value" ] && [ -w "$value" ] || fail "$name=$value: not a writable directory"
done

# write_secret_id ROLE DIR: a new secret_id of AppRole ROLE into DIR/secret_id.
write_secret_id() {
    tmp=$(mktemp "$2/.secret_id.XXXXXX") || fail "cannot create a file in $2"
    if ! bao write -field=secret_id -f "auth/approle/role/$1/secret-id" >"$tmp" \
        || [ ! -s "$tmp" ] || ! chown "$APP_UID:$APP_GID" "$tmp" || ! chmod 0600 "$tmp"; then
        rm -f "$tmp"
        fail "AppRole $1: no secret_id written to $2"
    fi
    mv -f "$tmp" "$2/secret_id"
}

bao read sys/mounts/database >/dev/null 2>&1 || bao secrets enable -path=database database
# The password goes in on stdin (`password=-`), never in an argument: any local user reads
# a process's command line. printf is the shell's own, not a process of its own.
printf '%s' "$VAULT_ADMIN_PASSWORD" | bao write database/config/app \
    plugin_name=postgresql-database-plugin \
    connection_url="postgresql://{{username}}:{{password}}@${PG_HOST}:${PG_PORT}/app?sslmode=disable" \
    username=vault_admin password=- \
    allowed_roles="*" verify_connection=true

bao write database/roles/app db_name=app \
    creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE \"app_rw\";" \
    revocation_statements="DROP ROLE IF EXISTS \"{{name}}\";" \
    default_ttl="$DB_TTL" max_ttl="$DB_MAX_TTL"
bao write database/roles/migrator db_name=app \
    creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE \"app_owner\";" \
    revocation_statements="DROP ROLE IF EXISTS \"{{name}}\";" \
    default_ttl="$DB_TTL" max_ttl="$DB_MAX_TTL"

# Each login reaches its own roles' credentials and leases only: leases are renewed and
# revoked by URL (sys/leases/{renew,revoke}/<lease_id>), and allowed_parameters keeps a
# lease_id out of the body. No token gets Vault's default policy (renew/lookup any lease).
bao policy write app-service - <<'HCL'
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
path "database/creds/app" {
  capabilities = ["read"]
}
path "sys/leases/renew/database/creds/app/*" {
  capabilities = ["update"]
  allowed_parameters = { "increment" = [] }
}
path "sys/leases/revoke/database/creds/app/*" {
  capabilities = ["update"]
  allowed_parameters = { "sync" = [] }
}
HCL
bao policy write app-migrator - <<'HCL'
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
path "database/creds/migrator" {
  capabilities = ["read"]
}
path "sys/leases/renew/database/creds/migrator/*" {
  capabilities = ["update"]
  allowed_parameters = { "increment" = [] }
}
path "sys/leases/revoke/database/creds/migrator/*" {
  capabilities = ["update"]
  allowed_parameters = { "sync" = [] }
}
HCL

bao read sys/auth/approle >/dev/null 2>&1 || bao auth enable approle
# The service renews its token; a replica killed without revoking its leases loses its
# database login when the token expires: token_ttl bounds that window (5 min here).
bao write auth/approle/role/app token_policies=app-service token_no_default_policy=true \
    token_ttl=5m token_max_ttl=4h
bao write auth/approle/role/app/role-id role_id="$APPROLE_ROLE_ID"
# Migrations log in on their own AppRole: the service cannot obtain owner credentials.
bao write auth/approle/role/app-migrator token_policies=app-migrator token_no_default_policy=true \
    token_ttl=15m token_max_ttl=1h
bao write auth/approle/role/app-migrator/role-id role_id="$MIGRATOR_APPROLE_ROLE_ID"
write_secret_id app "$SECRET_ID_DIR"
write_secret_id app-migrator "$MIGRATOR_SECRET_ID_DIR"
echo "vault-init: database engine, roles, policies and AppRoles configured"
