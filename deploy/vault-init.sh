#!/bin/sh
# One-shot: configure OpenBao like vault_async.devstack does, then write each AppRole's
# secret_id where its reader finds it (VAULT_SECRET_ID_FILE): /run/approle for the service,
# /run/approle-migrator for the migrations. Idempotent enough to re-run.
set -eu

bao secrets enable -path=database database 2>/dev/null || true
bao write database/config/app \
    plugin_name=postgresql-database-plugin \
    connection_url="postgresql://{{username}}:{{password}}@${PG_HOST}:${PG_PORT}/app?sslmode=disable" \
    username=vault_admin password="$VAULT_ADMIN_PASSWORD" \
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

bao auth enable approle 2>/dev/null || true
bao write auth/approle/role/app token_policies=app-service token_no_default_policy=true \
    token_ttl=1h token_max_ttl=4h
bao write auth/approle/role/app/role-id role_id="$APPROLE_ROLE_ID"
# Migrations log in on their own AppRole: the service cannot obtain owner credentials.
bao write auth/approle/role/app-migrator token_policies=app-migrator token_no_default_policy=true \
    token_ttl=15m token_max_ttl=1h
bao write auth/approle/role/app-migrator/role-id role_id="$MIGRATOR_APPROLE_ROLE_ID"
umask 077
bao write -field=secret_id -f auth/approle/role/app/secret-id > /run/approle/secret_id
chmod 0444 /run/approle/secret_id
bao write -field=secret_id -f auth/approle/role/app-migrator/secret-id \
    > /run/approle-migrator/secret_id
chmod 0444 /run/approle-migrator/secret_id
echo "vault-init: database engine, roles, policies and AppRoles configured"
