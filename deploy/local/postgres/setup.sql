-- Run by infra.sh as the administrator after every `up postgres` (idempotent): the Debezium user and its
-- database. psql variables: user, password, db.
-- REPLICATION lets the user open logical replication connections and create slots; owning the database
-- lets it create tables and (as their owner) the publications Debezium creates for them.
SELECT format('CREATE ROLE %I LOGIN REPLICATION PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
