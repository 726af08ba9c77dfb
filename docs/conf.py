"""Sphinx configuration for the sklearn_bp documentation.

Build locally, from the repository root::

    python -m pip install ".[docs]"
    MPLBACKEND=Agg sphinx-build -W --keep-going -b html docs docs/_build/html

The build is offline by default: no intersphinx inventory is fetched, so ``-W`` does not
fail for want of a network, and the built site loads nothing from the network either:
MathJax (3.2.2, from the ``sphinx-mathjax-offline`` package of the docs extra) is copied
into ``_build/html/_static/mathjax``, and sphinx-gallery's execution-times page, which
loads DataTables from a CDN, is not written. ``docs/browser_check.py`` checks the result
in headless Chromium. Set ``SKLEARN_BP_DOCS_INTERSPHINX=1`` to link to the Python,
NumPy, SciPy and scikit-learn documentation instead (that needs network access).
Set ``SKLEARN_BP_DOCS_PLOT_GALLERY=0`` to skip running the gallery examples.
"""

import importlib
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import sklearn_bp  # noqa: E402
from sphinx.util import logging  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))  # maths_pages: the user guide's numbers and figure

# -- Project ------------------------------------------------------------------------------

project = "sklearn_bp"
author = "The sklearn_bp developers"
copyright = "The sklearn_bp developers"
release = sklearn_bp.__version__
version = ".".join(release.split(".")[:2])

# -- General ------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax served from the built site (_static/mathjax/tex-chtml.js), not a CDN
    "sphinx-mathjax-offline",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "maths_pages",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip",
                    # left over by sphinx-gallery < 0.18 or an older build: they load
                    # DataTables from a CDN (write_computation_times is off below)
                    "sg_execution_times.rst", "auto_examples/sg_execution_times.rst"]
root_doc = "index"
default_role = "literal"
# "fit()" rather than "BackpropClassifier.fit()" in the page's contents (right sidebar),
# where long qualified names were cut off
toc_object_entries_show_parents = "hide"
pygments_style = "sphinx"
nitpicky = False

# -- autodoc, autosummary, numpydoc ------------------------------------------------------

autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- intersphinx: off unless asked for ----------------------------------------------------

if os.environ.get("SKLEARN_BP_DOCS_INTERSPHINX", "0") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "joblib": ("https://joblib.readthedocs.io/en/stable", None),
    }
else:
    intersphinx_mapping = {}

# -- sphinx-gallery -----------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": os.environ.get("SKLEARN_BP_DOCS_PLOT_GALLERY", "1") != "0",
    "doc_module": ("sklearn_bp",),
    "backreferences_dir": "generated",
    "show_memory": False,
    "matplotlib_animations": False,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    # its page of execution times loads jQuery and DataTables from CDNs
    "write_computation_times": False,
}

if not sphinx_gallery_conf["plot_gallery"]:
    # The landing page shows a figure that only a run of the gallery makes.
    suppress_warnings = ["image.not_readable"]

# -- HTML ---------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_bp {release}"
html_static_path = ["_static"]
html_css_files = ["sklearn_bp.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # one row at 1280 px: the search is an icon (and Ctrl+K), not a wide field
    "header_links_before_dropdown": 6,
    "navbar_persistent": ["search-button"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# No left sidebar on pages without sub-pages, where its "Section Navigation" would be
# empty; the gallery and the API reference keep it (it lists their pages).
html_sidebars = {page: [] for page in
                 ["index", "getting_started", "user_guide", "performance", "dask"]}
html_show_sourcelink = False

# -- Every public name is in the API reference -------------------------------------------

_PUBLIC_MODULES = ["sklearn_bp", "sklearn_bp.backprop", "sklearn_bp.dask"]


def _check_api_coverage(app):
    """Warn (an error under ``-W``) for a name in a module's ``__all__`` missing from
    ``api.rst``, so that a new public function cannot go undocumented."""
    logger = logging.getLogger("sklearn_bp.docs")
    documented, current = set(), None
    for line in (HERE / "api.rst").read_text(encoding="utf-8").splitlines():
        module = re.match(r"^\.\. (?:current)?module:: ([\w.]+)", line)
        if module:
            current = module.group(1)
            continue
        entry = (re.match(r"^\s+~?([\w.]+)\s*$", line)
                 or re.match(r"^\.\. auto(?:class|function|data):: ([\w.]+)", line))
        if entry and current:
            documented.add(f"{current}.{entry.group(1)}")
    for module_name in _PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in getattr(module, "__all__", []):
            if name.startswith("__"):
                continue
            if f"{module_name}.{name}" not in documented:
                logger.warning(
                    "%s.%s is public (in __all__) but missing from docs/api.rst; add it "
                    "to the autosummary list of its module.", module_name, name,
                )


def _drop_type_docstrings(app, what, name, obj, options, lines):
    """A module constant without a ``#:`` comment would show its type's docstring (for
    a tuple, "Built-in immutable sequence..."); show only what api.rst says of it."""
    if what == "data" and lines and getattr(obj, "__doc__", None) == type(obj).__doc__:
        lines[:] = []


def setup(app):
    app.connect("builder-inited", _check_api_coverage)
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
