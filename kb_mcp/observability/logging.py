"""structlog setup: JSON lines in staging/production, readable console in development.

Every line, from structlog or from the standard library's loggers (asyncpg, botocore,
uvicorn), passes through the redaction processor and a final mask of the rendered text,
and goes to stderr (stdout belongs to the MCP stdio transport). The hot-swap library
(`secretswap`) logs through the standard library with its fields as record attributes;
they are lifted into the event (`_library_fields`), so its events read like ours.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from kb_mcp.observability.redaction import SecretValueRegistry, redact_event, secret_registry

__all__ = ["RedactingHandler", "configure_logging"]

LineSink = Callable[[str], None]
EventSink = Callable[[dict[str, Any]], None]


def _redaction_processor(registry: SecretValueRegistry) -> Processor:
    def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        redact_event(event_dict, registry)
        return event_dict

    return redact


class RedactingHandler(logging.Handler):
    """Writes formatted records to a stream or a line sink, masking loaded secrets again."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        sink: LineSink | None = None,
        registry: SecretValueRegistry | None = None,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._sink = sink
        self._registry = registry or secret_registry()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self._registry.mask(self.format(record))
            if self._sink is not None:
                self._sink(line)
            stream = self._stream
            if stream is not None:
                stream.write(line + "\n")
                stream.flush()
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_LIBRARIES = ("secretswap",)


def _library_fields(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The fields a structured library passed as `extra`, as event fields (before redaction)."""
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord) and record.name.startswith(_LIBRARIES):
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                event_dict.setdefault(key, value)
    return event_dict


def _event_sink_processor(sink: EventSink) -> Processor:
    def capture(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        sink(dict(event_dict))
        return event_dict

    return capture


class _SdkToolFailureFilter(logging.Filter):
    """Drops the SDK's `Tool 'x' failed: ...` line: our tools log each failure once
    (`tool.rejected` / `tool.failed`). Its argument-validation and unexpected-exception
    lines stay: no tool of ours saw those calls."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Tool %r failed: %r"


def configure_logging(
    *,
    json_lines: bool,
    level: str = "INFO",
    stream: TextIO | None = None,
    sink: LineSink | None = None,
    event_sink: EventSink | None = None,
    registry: SecretValueRegistry | None = None,
) -> None:
    """Configure structlog and the standard library's root logger (idempotent).

    `sink` gets every rendered line; `event_sink` every event as a dict, after redaction
    and before rendering (for tests: assert on fields, never on rendered text).
    """
    reg = registry or secret_registry()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor
    if json_lines:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        # No frame locals: they hold raw secret strings, truncated to 80 characters, and a
        # truncated value no longer matches the registered one, so masking cannot catch it.
        exc_processor: Processor = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        exc_processor = structlog.processors.format_exc_info
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _library_fields],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            exc_processor,
            _redaction_processor(reg),
            *([_event_sink_processor(event_sink)] if event_sink is not None else []),
            renderer,
        ],
    )
    handler = RedactingHandler(
        stream=stream if stream is not None else (None if sink is not None else sys.stderr),
        sink=sink,
        registry=reg,
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, RedactingHandler):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter that is noise at INFO. The MCP SDK's stateless HTTP transport
    # logs `Terminating session: None` for every request.
    for noisy in (
        "botocore", "aiobotocore", "urllib3", "httpx", "httpx2", "httpcore",
        "mcp.server.streamable_http",
    ):  # fmt: skip
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    sdk_server = logging.getLogger("mcp.server.mcpserver.server")
    if not any(isinstance(f, _SdkToolFailureFilter) for f in sdk_server.filters):
        sdk_server.addFilter(_SdkToolFailureFilter())
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def bound(**context: Any) -> structlog.stdlib.BoundLogger:
    """A logger with context bound (small convenience for components)."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger().bind(**context)
    return logger
