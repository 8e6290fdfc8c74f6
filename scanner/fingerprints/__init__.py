"""Fingerprints of a member: SHA-256 (computed while reading), perceptual hashes, faces."""
