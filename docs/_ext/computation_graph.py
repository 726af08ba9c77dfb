"""The computation graph of a network with one hidden layer, with shapes, for the guide.

Black arrows run forward: values, and tangents pushed forward. Red dashed arrows run
backward: covectors pulled back, each labelled with the matrix that represents it.
Drawn by matplotlib when the docs are built (see maths_pages.py).
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

FORWARD = "#222222"
BACKWARD = "#c0392b"
DATA = "#777777"

# name: (x, y, label, shape); values are boxes, maps are circles
VALUES = {
    "A0": (0.55, 3.0, r"$A_0 = X$", r"$n \times h_0$"),
    "Z1": (3.3, 3.0, r"$Z_1$", r"$n \times h_1$"),
    "A1": (5.6, 3.0, r"$A_1$", r"$n \times h_1$"),
    "Z2": (8.35, 3.0, r"$Z_2$", r"$n \times h_2$"),
    "J": (10.9, 3.0, r"$J$", r"$1 \times 1$"),
    "W0": (1.2, 5.0, r"$W_0$", r"$h_0 \times h_1$"),
    "b0": (2.55, 5.0, r"$b_0$", r"$1 \times h_1$"),
    "W1": (6.25, 5.0, r"$W_1$", r"$h_1 \times h_2$"),
    "b1": (7.6, 5.0, r"$b_1$", r"$1 \times h_2$"),
    "Y": (9.6, 1.1, r"$Y,\ s$", r"$n \times h_2,\ n$"),
}
MAPS = {
    "F0": (1.9, 3.0, r"$\Phi_0$"),
    "g": (4.45, 3.0, r"$g$"),
    "F1": (6.95, 3.0, r"$\Phi_1$"),
    "c": (9.6, 3.0, r"$c$"),
    "pen": (9.6, 5.0, r"$\frac{\alpha}{2S}\Sigma\Vert W_l\Vert^2$"),
}
BOX_W, BOX_H, RADIUS = 1.05, 0.85, 0.34
PEN_W, PEN_H = 1.5, 0.8


def _anchor(name):
    if name in VALUES:
        return VALUES[name][:2]
    return MAPS[name][:2]


def _arrow(ax, start, end, color, style="-", rad=0.0, width=1.4):
    ax.add_patch(FancyArrowPatch(
        start, end, arrowstyle="-|>", mutation_scale=13, color=color, linestyle=style,
        linewidth=width, connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))


def _edge_points(a, b, offset=0.0):
    """From the border of node a to the border of node b, along the straight line,
    moved sideways by `offset` (for a backward arrow beside a forward one)."""
    (xa, ya), (xb, yb) = _anchor(a), _anchor(b)
    dx, dy = xb - xa, yb - ya
    norm = (dx * dx + dy * dy) ** 0.5
    nx, ny = -dy / norm * offset, dx / norm * offset
    points = []
    for name, (x, y), sign in ((a, (xa, ya), 1), (b, (xb, yb), -1)):
        ux, uy = sign * dx, sign * dy
        if name in MAPS and name != "pen":
            t = RADIUS / norm
        else:
            w, h = (PEN_W, PEN_H) if name == "pen" else (BOX_W, BOX_H)
            t = min(w / 2 / abs(ux) if ux else 1e9, h / 2 / abs(uy) if uy else 1e9)
        points.append((x + t * ux + nx, y + t * uy + ny))
    return points


def draw(path):
    """Draw the graph into `path` (its suffix chooses the format)."""
    with plt.rc_context({"font.size": 12, "mathtext.fontset": "dejavusans",
                         "svg.hashsalt": "sklearn_bp", "svg.fonttype": "path"}):
        fig, ax = plt.subplots(figsize=(9.0, 5.6))
        ax.set_xlim(-0.1, 11.7)
        ax.set_ylim(0.5, 6.6)
        ax.set_aspect("equal")
        ax.axis("off")

        for name, (x, y, label, shape) in VALUES.items():
            data = name in ("A0", "Y")
            w = 1.4 if name == "Y" else BOX_W  # two shapes
            ax.add_patch(plt.Rectangle((x - w / 2, y - BOX_H / 2), w, BOX_H,
                                       facecolor="#f4f4f4" if data else "white",
                                       edgecolor=DATA if data else FORWARD, lw=1.2))
            ax.text(x, y + 0.14, label, ha="center", va="center", fontsize=14)
            ax.text(x, y - 0.22, shape, ha="center", va="center", fontsize=10,
                    color="#444444")
        for name, (x, y, label) in MAPS.items():
            if name == "pen":
                ax.add_patch(plt.Rectangle((x - PEN_W / 2, y - PEN_H / 2), PEN_W, PEN_H,
                                           facecolor="#eaf1fb", edgecolor=FORWARD,
                                           lw=1.2))
            else:
                ax.add_patch(plt.Circle((x, y), RADIUS, facecolor="#eaf1fb",
                                        edgecolor=FORWARD, lw=1.2))
            ax.text(x, y, label, ha="center", va="center",
                    fontsize=12 if name == "pen" else 14)

        # Forward: the values, and the tangents they carry
        for a, b in [("A0", "F0"), ("W0", "F0"), ("b0", "F0"), ("F0", "Z1"), ("Z1", "g"),
                     ("g", "A1"), ("A1", "F1"), ("W1", "F1"), ("b1", "F1"), ("F1", "Z2"),
                     ("Z2", "c"), ("Y", "c"), ("c", "J"), ("pen", "J")]:
            start, end = _edge_points(a, b)
            _arrow(ax, start, end, DATA if a in ("A0", "Y") else FORWARD)
        for w, rad in (("W0", -0.2), ("W1", -0.35)):
            (x, y), (xp, yp) = _anchor(w), _anchor("pen")
            _arrow(ax, (x, y + BOX_H / 2), (xp - 0.2, yp + PEN_H / 2), FORWARD, rad=rad)
        for a, b, text in [("F0", "Z1", r"$\dot Z_1$"), ("g", "A1", r"$\dot A_1$"),
                           ("F1", "Z2", r"$\dot Z_2$"), ("c", "J", r"$\dot J$")]:
            x = (_edge_points(a, b)[0][0] + _edge_points(a, b)[1][0]) / 2
            ax.text(x, 3.08, text, ha="center", va="bottom", fontsize=12, color=FORWARD)

        # Backward: covectors, pulled back
        def back(a, b, label, xy, rad=0.0, offset=0.0, ha="center", va="top"):
            start, end = _edge_points(a, b, offset)
            _arrow(ax, start, end, BACKWARD, style=(0, (4, 2)), rad=rad, width=1.3)
            if label:
                ax.text(*xy, label, ha=ha, va=va, fontsize=12, color=BACKWARD)

        back("J", "Z2", r"$G_2 = (s \odot D_2)/S$", (9.72, 2.1), rad=-0.5, ha="left")
        back("Z2", "A1", r"$G_2 W_1^{\top}$", (6.95, 2.15), rad=-0.45)
        back("A1", "Z1", r"$G_1 = (G_2 W_1^{\top}) \odot g'(Z_1)$", (4.45, 1.85),
             rad=-0.45)
        back("Z1", "A0", r"$G_1 W_0^{\top}$, unused", (1.9, 2.15), rad=-0.45)
        back("F1", "W1", r"$A_1^{\top} G_2$", (6.3, 3.95), offset=0.15, ha="right",
             va="center")
        back("F1", "b1", r"$\mathbf{1}^{\top} G_2$", (7.5, 3.95), offset=-0.15, ha="left",
             va="center")
        back("F0", "W0", r"$A_0^{\top} G_1$", (1.25, 3.95), offset=0.15, ha="right",
             va="center")
        back("F0", "b0", r"$\mathbf{1}^{\top} G_1$", (2.45, 3.95), offset=-0.15, ha="left",
             va="center")
        for w, rad in (("W0", 0.2), ("W1", 0.35)):
            (x, y), (xp, yp) = _anchor(w), _anchor("pen")
            _arrow(ax, (xp - 0.6, yp + PEN_H / 2), (x + 0.3, y + BOX_H / 2), BACKWARD,
                   style=(0, (4, 2)), rad=rad, width=1.3)
        ax.text(8.0, 6.25, r"$\alpha W_l / S$", ha="center", va="bottom", fontsize=12,
                color=BACKWARD)
        fig.savefig(path, bbox_inches="tight", metadata={"Date": None}
                    if str(path).endswith(".svg") else None)
        plt.close(fig)
    return path
