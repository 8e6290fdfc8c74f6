"""facetrace's HTTP service (FastAPI): `facetrace serve` (docs/api.md)."""
