"""Sphinx extension: the user guide's numbers and figure, made at build time.

* ``:bp:`...``` is inline maths in which ``@name`` stands for the number ``name`` of
  :func:`maths_numbers.inline_numbers`.
* ``.. bp-generated:: name`` puts the reStructuredText block ``name`` of
  :func:`maths_numbers.rst` (a table, the worked example's displays) into the page.
* When the build starts, :func:`computation_graph.draw` draws the computation graph
  into ``_generated/`` beside the sources (ignored by git).

A claim that no longer holds (the numbers are checked as they are made) stops the build.
"""

import re
from pathlib import Path

from docutils import nodes, utils
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

import maths_numbers

HERE = Path(__file__).resolve().parent
GENERATED = "_generated"
PLACEHOLDER = re.compile(r"@(\w+)")


def bp_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """Inline maths whose ``@name`` placeholders are numbers of
    :func:`maths_numbers.inline_numbers`: ``:bp:`-\\sigma(-40) = -@sigma_minus_40```."""
    text = utils.unescape(text, True)  # keep TeX's backslashes, as docutils' math role
    numbers = maths_numbers.inline_numbers()
    unknown = [n for n in PLACEHOLDER.findall(text) if n not in numbers]
    if unknown or not PLACEHOLDER.search(text):
        message = inliner.reporter.error(
            f"{text!r} names no known number ({', '.join(unknown)}); "
            f"maths_numbers.inline_numbers() has {', '.join(sorted(numbers))}",
            line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    inliner.document.settings.env.note_dependency(maths_numbers.__file__)
    latex = PLACEHOLDER.sub(lambda match: numbers[match.group(1)], text)
    return [nodes.math(rawtext, latex)], []


class GeneratedBlock(SphinxDirective):
    """``.. bp-generated:: name``: reStructuredText made by maths_numbers.rst(name)."""

    required_arguments = 1

    def run(self):
        self.env.note_dependency(maths_numbers.__file__)
        text = maths_numbers.rst(self.arguments[0])
        source = f"<maths_numbers.rst({self.arguments[0]!r})>"
        container = nodes.container()
        self.state.nested_parse(StringList(text.splitlines(), source=source),
                                self.content_offset, container)
        return container.children


def draw_figures(app):
    import computation_graph

    out = Path(app.srcdir) / GENERATED
    out.mkdir(exist_ok=True)
    computation_graph.draw(out / "computation_graph.svg")


def setup(app):
    app.add_role("bp", bp_role)
    app.add_directive("bp-generated", GeneratedBlock)
    app.connect("builder-inited", draw_figures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
