#!/bin/sh
# Roles and database for a service on Vault-issued logins (same layout as vault_async.devstack):
#   app_owner  NOLOGIN, owns the schema; migrations SET ROLE to it
#   app_rw     NOLOGIN group that dynamic users join; read/write on the owner's tables
#   vault_admin  the login OpenBao uses to create and drop users (CREATEROLE, ADMIN on the groups)
set -eu
: "${VAULT_ADMIN_PASSWORD:?set the vault_admin login password}"
# psql reads the password from its environment (\getenv, psql 15+), never from an argument:
# any local user reads a process's command line.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv admin_pw VAULT_ADMIN_PASSWORD
CREATE ROLE app_owner NOLOGIN;
CREATE ROLE app_rw NOLOGIN;
CREATE ROLE vault_admin LOGIN CREATEROLE PASSWORD :'admin_pw';
GRANT app_owner TO vault_admin WITH ADMIN TRUE, INHERIT FALSE, SET FALSE;
GRANT app_rw TO vault_admin WITH ADMIN TRUE, INHERIT FALSE, SET FALSE;
CREATE DATABASE app OWNER app_owner;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname app <<'SQL'
REVOKE ALL ON DATABASE app FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE app TO app_rw, app_owner;
GRANT CONNECT ON DATABASE app TO vault_admin;
ALTER SCHEMA public OWNER TO app_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO app_rw;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_rw;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO app_rw;
SQL
