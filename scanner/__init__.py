"""facetrace scanning engine: untrusted input in, findings out.

The engine never prints and never exits; `cli/` and `api/` translate its results and errors.
Importing this package is cheap: models and heavy libraries load on first use.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("facetrace")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
