"""Test configuration shared by every test module.

Hypothesis draws new random examples on every run, which is how the fuzz tests keep
finding new failures on developers' machines (one found in this way is pinned with
``@example`` in ``test_reliability.py``). Continuous integration (``CI`` set, as
``.ci/run`` is run) draws them from a fixed seed instead, so that a landing is never
decided by the luck of the draw; a failure found at random locally is reproduced there
by pinning it.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
