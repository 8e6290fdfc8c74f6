"""Dump profiling: people in a dump, packaging, capture metadata, bundle assessment."""
