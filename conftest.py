"""pytest configuration for the whole repository."""

import importlib.util

# sklearn_bp/dask.py needs the optional "dask" extra; without it, its doctests are not
# collected (tests/test_dask.py skips itself).
collect_ignore = []
if any(importlib.util.find_spec(name) is None for name in ("dask", "distributed")):
    collect_ignore.append("sklearn_bp/dask.py")
