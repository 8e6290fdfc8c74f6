"""Storage and search: the workspace, its case store (SQLAlchemy), and the search indexes (FAISS
vectors in vectors.py, pHash Hamming search in hashes.py; docs/indexes.md).

This layer knows nothing of the scanner: it stores and returns plain values.
"""
