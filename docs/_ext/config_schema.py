"""Sphinx extension: the configuration reference, generated from the workflow's JSON schema.

``{config-schema} ../workflow/schemas/config.schema.yaml`` renders one section per top-level
key and one table row per nested key (name, type, default, description), so the page can never
drift from the schema the workflow validates against.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList


def _type(spec: dict) -> str:
    """Return the schema type of one key as text ("integer", "string or null", ...)."""
    t = spec.get("type", "")
    if isinstance(t, list):
        return " or ".join(t)
    if "enum" in spec:
        return "one of " + ", ".join(repr(v) for v in spec["enum"])
    return t or "any"


def _rows(props: dict, prefix: str):
    """Yield (dotted name, spec) for every key under ``props``, depth first."""
    for name, spec in props.items():
        dotted = f"{prefix}{name}"
        yield dotted, spec
        if isinstance(spec.get("properties"), dict):
            yield from _rows(spec["properties"], dotted + ".")


def _cell(text: str) -> str:
    """Escape text for one cell of a MyST/RST list-table."""
    return " ".join(str(text).split()) or "-"


def schema_lines(path: Path) -> list[str]:
    """Return reStructuredText documenting every key of the schema at ``path``."""
    schema = yaml.safe_load(path.read_text())
    lines = [_cell(schema.get("description", "")), ""]
    for name, spec in schema["properties"].items():
        lines += [f"``{name}``", "~" * (len(name) + 4), "", _cell(spec.get("description", "")), ""]
        lines += [".. list-table::", "   :header-rows: 1", "   :widths: 25 15 15 45", ""]
        lines += ["   * - key", "     - type", "     - default", "     - meaning"]
        for dotted, sub in _rows({name: spec}, ""):
            default = sub.get("default", "-")
            if isinstance(default, dict | list) and len(str(default)) > 40:
                default = "(see keys)"
            lines += [
                f"   * - ``{dotted}``",
                f"     - {_cell(_type(sub))}",
                f"     - ``{default!r}``" if default != "-" else "     - -",
                f"     - {_cell(sub.get('description', ''))}",
            ]
        lines.append("")
    return lines


class ConfigSchema(Directive):
    """Directive ``config-schema``: one argument, the schema path relative to the page."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """Parse the generated reStructuredText into the page."""
        env = self.state.document.settings.env
        path = (Path(env.doc2path(env.docname)).parent / self.arguments[0]).resolve()
        env.note_dependency(str(path))
        node = nodes.section()
        node.document = self.state.document
        self.state.nested_parse(StringList(schema_lines(path), str(path)), 0, node)
        return node.children


def setup(app):
    """Register the directive."""
    app.add_directive("config-schema", ConfigSchema)
    return {"parallel_read_safe": True, "version": "1.0"}
