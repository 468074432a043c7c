-- pgvector provides vector/halfvec and HNSW. On PostgreSQL the extension must be installed on the
-- server (>= 0.8.0; >= 0.8.4 recommended for HNSW vacuum fixes); PGlite loads its bundled build.
CREATE EXTENSION IF NOT EXISTS vector;
