"""Storage and search: the workspace, its case store (SQLAlchemy), and (later) FAISS indexes.

This layer knows nothing of the scanner: it stores and returns plain values.
"""
