"""A small stand-in for `verwalter_render`, enough to render and check the templates in verwalter/.

Verwalter and its template engine (trimmer) are Rust programs with no Debian or PyPI package, so the
tests render with this instead. It implements the part of trimmer our templates use, as trimmer's
doc/template_syntax.rst describes it, and refuses anything else:

    ## syntax: indent            first line: block bodies lose the indentation their block added
    ## validate default: REGEX   every printed value must match REGEX entirely
    ## for k, v in map / ## for x in list / ## endfor     (maps iterate in key order, as trimmer's do)
    ## if expr / ## else / ## endif
    {{ a.b.c }}                  a variable, with attribute access; an unknown name is an error

and of a renderer file (`*.render.yaml`, src/render/renderfile.rs): `templates` (name -> file, rendered
to a temporary file each) and `commands`, whose string arguments know `{{ role }}` and `{{ files.NAME }}`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import lithos_schema
from tests.support.paths import REPO

#: The repo's templates for Verwalter, and the example variables they are rendered with.
TEMPLATES = REPO / "verwalter" / "templates" / "resize-sidecar" / "v1"
EXAMPLE_VARIABLES = REPO / "verwalter" / "example-vars.yaml"
_STATEMENT = re.compile(r"^(\s*)##\s*(.*)$")
_EXPRESSION = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


class TemplateError(ValueError):
    pass


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"unknown variable {dotted!r}")
        value = value[part]
    return value


def render_trimmer(text: str, context: dict[str, Any]) -> str:
    lines = text.splitlines(keepends=True)
    indent_syntax = bool(lines) and lines[0].strip() == "## syntax: indent"
    validator: re.Pattern[str] | None = None
    out: list[str] = []

    def emit(block: list[str], scope: dict[str, Any]) -> None:
        i = 0
        while i < len(block):
            match = _STATEMENT.match(block[i])
            if not match:
                out.append(_EXPRESSION.sub(lambda m: _print(_lookup(scope, m.group(1))), block[i]))
                i += 1
                continue
            words = match.group(2).split()
            if not words or words[0] == "syntax:":
                i += 1
                continue
            if words[0] == "validate":
                nonlocal validator
                validator = re.compile(match.group(2).split(":", 1)[1].strip())
                i += 1
                continue
            if words[0] not in ("for", "if"):
                raise TemplateError(f"unsupported statement: {match.group(2)!r}")
            end = "endfor" if words[0] == "for" else "endif"
            body: list[str] = []
            other: list[str] = []
            depth, j = 0, i + 1
            target = body
            while j < len(block):
                inner = _STATEMENT.match(block[j])
                word = inner.group(2).split()[0] if inner and inner.group(2).split() else ""
                if word in ("for", "if"):
                    depth += 1
                elif word in ("endfor", "endif") and depth:
                    depth -= 1
                elif word == end and not depth:
                    break
                elif word == "else" and not depth and end == "endif":
                    target = other
                    j += 1
                    continue
                target.append(block[j])
                j += 1
            else:
                raise TemplateError(f"no {end} for {match.group(2)!r}")
            if indent_syntax:
                body, other = _dedent(body, len(match.group(1))), _dedent(other, len(match.group(1)))
            if words[0] == "if":
                emit(body if _lookup(scope, " ".join(words[1:])) else other, scope)
            else:
                header = re.fullmatch(r"for\s+(\w+)(?:\s*,\s*(\w+))?\s+in\s+([\w.]+)", match.group(2))
                if not header:
                    raise TemplateError(f"bad for: {match.group(2)!r}")
                items = _lookup(scope, header.group(3))
                pairs = sorted(items.items()) if header.group(2) else [(item, None) for item in items]
                for key, value in pairs:
                    inner_scope = {**scope, header.group(1): key}
                    if header.group(2):
                        inner_scope[header.group(2)] = value
                    emit(body, inner_scope)
            i = j + 1

    def _print(value: Any) -> str:
        text = str(value)
        if validator is not None and not validator.fullmatch(text):
            raise TemplateError(f"{text!r} does not pass the template's validator {validator.pattern!r}")
        return text

    emit(lines, context)
    return "".join(out)


def _dedent(block: list[str], statement_indent: int) -> list[str]:
    widths = [len(line) - len(line.lstrip()) for line in block if line.strip()]
    extra = max(0, min(widths, default=statement_indent) - statement_indent)
    return [line[extra:] if line.strip() else line for line in block]


@dataclass
class Rendered:
    files: dict[str, Path]
    commands: list[tuple[str, Any]]  # (tag, argv or mapping), with {{ role }} and {{ files.* }} filled in


def render_dir(template_dir: Path, variables: dict[str, Any], scratch: Path) -> dict[str, Rendered]:
    """Render every `*.render.yaml` in `template_dir`, as `verwalter_render --check-dir` would."""
    if "role" not in variables:
        raise TemplateError("the variables must include role")
    results = {}
    for renderer in sorted(template_dir.glob("*.render.yaml")):
        spec = lithos_schema.load(renderer.read_text())
        unknown = set(spec) - {"templates", "commands"}
        if unknown:
            raise TemplateError(f"{renderer.name}: unknown keys {sorted(unknown)}")
        files = {}
        for name, template in spec["templates"].items():
            path = scratch / f"{renderer.stem}.{name}"
            path.write_text(render_trimmer((renderer.parent / template).read_text(), variables))
            files[name] = path
        small = {"role": variables["role"], "files": {k: str(v) for k, v in files.items()}}
        commands = []
        for command in spec["commands"]:
            if not isinstance(command, lithos_schema.Tagged):
                raise TemplateError(f"{renderer.name}: a command must be tagged (!RootCommand, !Cmd, ...)")
            commands.append((command.tag, _fill(command.value, small)))
        results[renderer.name] = Rendered(files, commands)
    return results


def _fill(value: Any, small: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _EXPRESSION.sub(lambda m: str(_lookup(small, m.group(1))), value)
    if isinstance(value, list):
        return [_fill(item, small) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, small) for key, item in value.items()}
    return value


def example_variables() -> dict[str, Any]:
    """verwalter/example-vars.yaml, loaded afresh (tests change it)."""
    return dict(yaml.safe_load(EXAMPLE_VARIABLES.read_text()))
