"""Tools that refuse unknown arguments and say what is wrong with an argument in plain words.

The MCP SDK validates a call's arguments with the pydantic model it builds from the tool's
signature, and reports a failure as pydantic's own text: the model's class name, error
codes, the rejected input and a link to pydantic's documentation. A model (or a person)
reading that has to decode it. `StrictToolsServer` registers every tool so that:

- the input schema says `additionalProperties: false` and an unknown argument is refused,
  naming it and the arguments the tool takes;
- the description is dedented (`inspect.cleandoc`), as a client shows it;
- an argument pydantic refuses is reported as the field, what is wrong and the limit, read
  from the tool's own input schema (so the message, the schema and the validators in
  `kb_mcp.server.validation` say the same limit); never pydantic's text or the value.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, Icon, InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from kb_mcp.server.validation import MAX_METADATA_BYTES

__all__ = ["StrictToolsServer", "describe_argument_errors"]

LifespanT = TypeVar("LifespanT")
ModelT = TypeVar("ModelT", bound=BaseModel)

_MAX_NAME_SHOWN = 64
"""An unknown argument's name is the caller's text: shown up to this many characters."""


class StrictToolsServer(MCPServer[LifespanT]):
    """An `MCPServer` whose tools refuse unknown arguments and explain refused ones plainly."""

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        """Register `fn` like `MCPServer.add_tool`, its arguments strict, its docstring dedented."""
        super().add_tool(
            fn,
            name=name,
            title=title,
            description=description or inspect.cleandoc(fn.__doc__ or ""),
            annotations=annotations,
            icons=icons,
            meta=meta,
            structured_output=structured_output,
        )
        tool = self._tool_manager.get_tool(name or fn.__name__)
        if tool is None:  # pragma: no cover - the SDK registered it just above
            return
        metadata = tool.fn_metadata
        metadata.arg_model = _forbidding_extra(metadata.arg_model)
        tool.parameters = metadata.arg_model.model_json_schema(by_alias=True)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[LifespanT, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Run a tool; refused arguments are reported in plain words."""
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            cause = exc.__cause__
            tool = self._tool_manager.get_tool(name)
            if not isinstance(cause, ValidationError) or tool is None:
                raise
            message = describe_argument_errors(name, tool.parameters, cause)
            # From the ValidationError: the SDK logs the refused fields' names from it.
            raise ToolError(f"Error executing tool {name}: {message}") from cause


def _forbidding_extra(model: type[ModelT]) -> type[ModelT]:
    """A subclass of the SDK's argument model that refuses arguments it does not declare."""
    config = ConfigDict(**{**model.model_config, "extra": "forbid"})
    return type(model.__name__, (model,), {"model_config": config, "__module__": __name__})


def describe_argument_errors(tool: str, schema: Mapping[str, Any], error: ValidationError) -> str:
    """One sentence per refused argument: its name, what is wrong, the limit from `schema`."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    defs: Mapping[str, Any] = schema.get("$defs", {})
    seen: dict[str, str] = {}
    for detail in error.errors(include_url=False, include_input=True):
        loc = tuple(detail.get("loc", ()))
        kind = detail["type"]
        if kind == "extra_forbidden" and loc:
            key = "extra:" + ".".join(str(part) for part in loc)
            name = _shown(str(loc[-1]))
            if len(loc) == 1:
                takes = ", ".join(properties) or "no arguments"
                seen.setdefault(key, f"unknown argument {name!r} ({tool} takes {takes})")
            else:
                parent, _ = _locate(loc[:-1], schema, defs)
                seen.setdefault(key, f"unknown field {name!r} in {parent}")
            continue
        key = str(loc[0]) if loc else ""
        if key not in seen:
            label, prop = _locate(loc, schema, defs)
            seen[key] = _sentence(label or "arguments", kind, detail.get("input"), prop)
    return "; ".join(seen.values()) or "the arguments are not valid"


def _shown(name: str) -> str:
    """A name the caller chose, cut to a readable length."""
    return name if len(name) <= _MAX_NAME_SHOWN else name[:_MAX_NAME_SHOWN] + "..."


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A value's schema: `$ref` followed, an optional value's non-null branch (its limits kept)."""
    if isinstance(ref := prop.get("$ref"), str):
        prop = {
            **defs.get(ref.rsplit("/", 1)[-1], {}),
            **{k: v for k, v in prop.items() if k != "$ref"},
        }
    branches = [b for b in prop.get("anyOf", ()) if b.get("type") != "null"]
    if len(branches) == 1:
        merged = {k: v for k, v in prop.items() if k != "anyOf"}
        return {**_resolve(branches[0], defs), **merged}
    return prop


def _locate(
    loc: Sequence[int | str], root: Mapping[str, Any], defs: Mapping[str, Any]
) -> tuple[str, Mapping[str, Any]]:
    """`tags[3]` or `items[0].title`, and the schema there, for an error at `loc`."""
    label, prop = "", _resolve(root, defs)
    for part in loc:
        if isinstance(part, int) and prop.get("type") == "array":
            label += f"[{part}]"
            prop = _resolve(prop.get("items", {}), defs)
        elif isinstance(part, str) and part in prop.get("properties", {}):
            label += f".{part}" if label else part
            prop = _resolve(prop["properties"][part], defs)
        else:  # a union's branch name or a dict key: the label so far is the place
            break
    return label, prop


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    kinds: Sequence[tuple[type | tuple[type, ...], str]] = (
        (str, "a string"),
        (int, "an integer"),
        (float, "a number with a fraction"),
        (list, "a list"),
        (dict, "an object"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), "another type")


def _expected(prop: Mapping[str, Any]) -> str:
    """What the schema asks for, in words: `an integer from 1 to 50`, `a list of strings`."""
    if "enum" in prop:
        return "one of " + ", ".join(str(v) for v in prop["enum"])
    kind = prop.get("type")
    if kind == "integer":
        if "minimum" in prop and "maximum" in prop:
            return f"an integer from {prop['minimum']} to {prop['maximum']}"
        return "an integer"
    if kind == "number":
        return "a number"
    if kind == "boolean":
        return "true or false"
    if kind == "object":
        return "a JSON object"
    if kind == "array":
        items = prop.get("items", {})
        inner = "strings" if items.get("type") == "string" else "values"
        most = f" (at most {prop['maxItems']})" if "maxItems" in prop else ""
        return f"a list of {inner}{most}"
    if kind == "string":
        if "maxLength" in prop:
            return f"a string of at most {prop['maxLength']} characters"
        return "a string"
    return "a valid value"


def _sentence(label: str, kind: str, value: object, prop: Mapping[str, Any]) -> str:
    if kind == "missing":
        return f"{label} is required"
    if kind == "string_too_long" and isinstance(value, str) and "maxLength" in prop:
        return f"{label} is {len(value)} characters; the limit is {prop['maxLength']}"
    if kind == "too_long" and isinstance(value, list | dict) and "maxItems" in prop:
        return f"{label} has {len(value)} entries; the limit is {prop['maxItems']}"
    if kind == "too_long" and isinstance(value, dict):
        return f"{label} is over the size limit: the limit is {MAX_METADATA_BYTES} bytes as JSON"
    return f"{label} must be {_expected(prop)}, got {_json_kind(value)}"
