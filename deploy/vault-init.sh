#!/bin/sh
# One-shot: configure OpenBao like vault_async.devstack does, then write the AppRole
# secret_id where the app reads it (VAULT_SECRET_ID_FILE). Idempotent enough to re-run.
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

bao policy write app-service - <<'HCL'
path "database/creds/*" { capabilities = ["read"] }
path "database/static-creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
HCL

bao auth enable approle 2>/dev/null || true
bao write auth/approle/role/app token_policies=app-service token_ttl=1h token_max_ttl=4h
bao write auth/approle/role/app/role-id role_id="$APPROLE_ROLE_ID"
umask 077
bao write -field=secret_id -f auth/approle/role/app/secret-id > /run/approle/secret_id
chmod 0444 /run/approle/secret_id
echo "vault-init: database engine, roles, policy and AppRole configured"
