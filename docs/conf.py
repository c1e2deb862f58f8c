"""Sphinx configuration of the nam documentation site (MyST Markdown, sphinx-book-theme)."""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS / "_ext"))

project = "nam"
author = "nam authors"
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "config_schema",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
html_theme = "sphinx_book_theme"
html_title = "nam"
html_static_path = ["_static"]
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = True
# Type names written in docstrings (shapes, numpy/torch types) are prose, not cross-references.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r".*")]
suppress_warnings = ["myst.header"]


def _plain_text_docstring(app, what, name, obj, options, lines):
    """Escape docstring prose that reads as reStructuredText markup.

    The docstrings write maths as plain text: ``|ELBO_t - ELBO_{t-1}|`` and shapes such as
    ``(n_iter_,)``, which docutils would take for substitutions and link targets.
    """
    import re

    for i, line in enumerate(lines):
        line = line.replace("|", r"\|")
        lines[i] = re.sub(r"(\w)_(?=[,)\s;:]|$)", r"\1\\_", line)


def setup(app):
    """Connect the docstring filter."""
    app.connect("autodoc-process-docstring", _plain_text_docstring)
