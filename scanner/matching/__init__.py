"""Matching against the registry: distances come from indexes, decisions from `policy`."""
