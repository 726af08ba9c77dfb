"""
====================================
Saving and loading a fitted pipeline
====================================

A fitted pipeline is saved with :mod:`joblib` (pickle underneath), or with
`skops <https://skops.readthedocs.io>`_, whose format can be inspected before loading
and does not run arbitrary code. Both give back a pipeline that predicts exactly what
the original predicted.

``BackpropClassifier`` records the ``sklearn_bp`` version in its saved state and warns
when a file is loaded with a different version: refit, or load it with the version that
saved it.
"""

# %%
# Fit a pipeline
# --------------
import os
import tempfile

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bp import BackpropClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
model = make_pipeline(
    StandardScaler(),
    BackpropClassifier(hidden_layer_sizes=(25,), alpha=1.0, random_state=0),
).fit(X_train, y_train)
proba = model.predict_proba(X_test)

folder = tempfile.mkdtemp()
sizes, loaded = {}, {}

# %%
# joblib
# ------
# Only load pickles you trust: unpickling can run any code.
path = os.path.join(folder, "model.joblib")
joblib.dump(model, path)
loaded["joblib"] = joblib.load(path)
sizes["joblib"] = os.path.getsize(path)
print(f"joblib file: {sizes['joblib'] / 1024:.1f} KiB")
print("identical probabilities:",
      np.array_equal(loaded["joblib"].predict_proba(X_test), proba))

# %%
# skops
# -----
# skops refuses to load types it does not know unless you name them.
# ``get_untrusted_types`` lists them; check the list, then pass it as ``trusted``.
# For this pipeline it is the classifier alone; other steps can add types of their
# own (a ``SimpleImputer`` adds ``numpy.dtype``), so read the list of each file.
try:
    import skops.io as sio
except ImportError:
    sio = None
    print("skops is not installed: python -m pip install skops")

if sio is not None:
    path = os.path.join(folder, "model.skops")
    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    print("types to review before loading:", untrusted)
    loaded["skops"] = sio.load(path, trusted=untrusted)
    sizes["skops"] = os.path.getsize(path)
    print(f"skops file: {sizes['skops'] / 1024:.1f} KiB")
    print("identical probabilities:",
          np.array_equal(loaded["skops"].predict_proba(X_test), proba))

# %%
# The loaded pipelines predict what the original did
# ---------------------------------------------------
fig, axes = plt.subplots(1, len(loaded), figsize=(4.5 * len(loaded), 4), squeeze=False)
for ax, (name, pipeline) in zip(axes[0], loaded.items()):
    ax.plot(proba.ravel(), pipeline.predict_proba(X_test).ravel(), ".", markersize=3)
    ax.plot([0, 1], [0, 1], color="gray", linewidth=1)
    ax.set_xlabel("predict_proba, original pipeline")
    ax.set_ylabel(f"predict_proba, loaded with {name}")
    difference = np.abs(pipeline.predict_proba(X_test) - proba).max()
    ax.set_title(f"{name}: {sizes[name] / 1024:.0f} KiB, max difference {difference:g}",
                 fontsize=10)
fig.tight_layout()
plt.show()

# %%
# Remove the temporary files.
import shutil

shutil.rmtree(folder)
