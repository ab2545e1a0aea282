#!/bin/bash
# First start of the postgres service only (docker-entrypoint-initdb.d): corpusbridge's own role and database, apart
# from Airflow's metadata database, with pgvector (document_vectors is vector(384) with an HNSW index).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v pw="$CORPUSBRIDGE_DB_PASSWORD" <<'SQL'
CREATE ROLE corpusbridge LOGIN PASSWORD :'pw';
CREATE DATABASE corpusbridge OWNER corpusbridge;
\connect corpusbridge
CREATE EXTENSION IF NOT EXISTS vector;
SQL
