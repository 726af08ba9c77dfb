"""
==========================================
What the hidden units of a digit model see
==========================================

The first weight matrix ``coefs_[0]`` has shape ``(64, 25)`` for 8x8 digit images and
25 hidden units: column ``j`` holds the weights with which hidden unit ``j`` combines
the 64 pixels. Drawn as an 8x8 image, it shows the stroke pattern that switches the
unit on (red: pixels that push the unit towards 1, blue: towards 0).

This is the classic picture of backpropagation on handwritten digits, here on
scikit-learn's bundled digits.
"""

# %%
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
net = model[-1]
print(f"test accuracy {model.score(X_test, y_test):.3f} after {net.n_iter_} iterations")
print("coefs_ shapes:", [W.shape for W in net.coefs_])

# %%
# The 25 hidden units
# -------------------
# Each panel uses a colour scale symmetric around zero, so that white means "this pixel
# does not matter to this unit". Three pixels are blank in every training image; after
# the ``StandardScaler`` they are 0 for every sample, so the data contribute nothing to
# the gradient of their weights, only the penalty ``alpha`` does, and it pulls them to
# zero (below 1e-3 here, against a mean absolute weight of about 0.2). The rarely inked
# border pixels get small weights for the same reason.
W = net.coefs_[0]
fig, axes = plt.subplots(5, 5, figsize=(7, 7))
for j, ax in enumerate(axes.ravel()):
    image = W[:, j].reshape(8, 8)
    bound = np.abs(image).max()
    ax.imshow(image, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"unit {j}", fontsize=8)
fig.suptitle("Input weights of each hidden unit, drawn as 8x8 images")
fig.tight_layout()
plt.show()

# %%
# Which digits use which unit
# ---------------------------
# The output layer ``coefs_[1]`` (shape ``(25, 10)``) says how strongly each hidden unit
# votes for each digit. Each row below is one digit class; a strongly red cell is a
# hidden unit whose activity makes that digit more likely.
fig, ax = plt.subplots(figsize=(8, 3.5))
V = net.coefs_[1].T
bound = np.abs(V).max()
im = ax.imshow(V, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
ax.set_yticks(range(10), labels=[str(c) for c in net.classes_])
ax.set_xticks(range(W.shape[1]))
ax.set_xlabel("hidden unit")
ax.set_ylabel("digit")
fig.colorbar(im, ax=ax, label="weight in coefs_[1]")
ax.set_title("Output weights: hidden unit -> digit")
fig.tight_layout()
plt.show()
