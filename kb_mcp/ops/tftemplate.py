"""The subset of Terraform's template language the IAM policy templates use, rendered in
Python exactly as Terraform's `templatefile` renders it (a test compares the two byte for
byte with the real `terraform console`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["TemplateValue", "render_template"]

_FOR_RE = re.compile(
    r"%\{\s*for\s+([A-Za-z_]\w*)\s+in\s+([A-Za-z_]\w*)\s*\}(.*?)%\{\s*endfor\s*\}", re.DOTALL
)
_IF_RE = re.compile(r"%\{\s*if\s+([A-Za-z_]\w*)\s*\}(.*?)%\{\s*endif\s*\}", re.DOTALL)
_VAR_RE = re.compile(r"\$\{\s*([A-Za-z_]\w*)\s*\}")


TemplateValue = str | bool | Sequence[str]


def render_template(text: str, variables: Mapping[str, TemplateValue]) -> str:
    """Render the subset of Terraform template syntax our templates use.

    Supported: `${name}` (a string variable), `%{ if name }...%{ endif }` (a bool variable,
    no `else`, no `~` strip markers) and `%{ for item in name }...%{ endfor }` (a list of
    strings; its body may hold `${item}` and ifs, not another for), which render exactly as
    Terraform's `templatefile` renders them. Anything else is refused rather than rendered
    differently.
    """

    unsupported = (
        "template uses syntax beyond ${name}, %{ if name }...%{ endif } and "
        "%{ for item in name }...%{ endfor }"
    )

    def _lookup(name: str) -> TemplateValue:
        if name not in variables:
            raise ValueError(f"template variable {name} is not given")
        return variables[name]

    def _for(match: re.Match[str]) -> str:
        item, values = match.group(1), _lookup(match.group(2))
        if isinstance(values, str | bool):
            raise TypeError(f"template loop over {match.group(2)} needs a list of strings")
        if "%{ for" in match.group(3) or "%{for" in match.group(3):
            raise ValueError(unsupported)
        return "".join(
            render_template(match.group(3), {**variables, item: value}) for value in values
        )

    def _if(match: re.Match[str]) -> str:
        value = _lookup(match.group(1))
        if not isinstance(value, bool):
            raise TypeError(f"template condition {match.group(1)} needs a bool variable")
        if "%{" in match.group(2):  # `else` or a nested directive
            raise ValueError(unsupported)
        return match.group(2) if value else ""

    def _var(match: re.Match[str]) -> str:
        value = _lookup(match.group(1))
        if not isinstance(value, str):
            raise TypeError(f"template variable {match.group(1)} needs a string value")
        return value

    without_ifs = _IF_RE.sub(_if, _FOR_RE.sub(_for, text))
    if "%{" in without_ifs:
        raise ValueError(unsupported)
    rendered = _VAR_RE.sub(_var, without_ifs)
    if "${" in rendered:
        raise ValueError(unsupported)
    return rendered
