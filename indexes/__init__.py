"""Storage and search, the bottom layer; it knows nothing of the scanner and imports none of it.

- `indexes.store`: the relational stores (SQLAlchemy on SQLite or PostgreSQL): tables, their
  migrations, the workspace folder and its signing key, the audit log's signed heads.
- `indexes.search`: the search indexes kept beside the database: FAISS vectors
  (`search.vectors`), 64-bit pHash Hamming search (`search.hashes`), their segment files, and the
  registry's two indexes kept in step with its tables (`search.subject_index`). docs/indexes.md.

`search` may read `store` (the subject index rebuilds from the subjects' tables); `store` never
imports `search`.
"""
