"""`CoalescingEmbeddingsBackend`: few embeddings calls in flight; requests that arrive
while they are busy share the next call.

An embeddings request costs a round trip and a fixed amount of client work (the `openai`
client builds and sends an HTTP request, the answer is parsed) however few texts it
carries, and OpenAI counts requests per minute against a limit of their own, apart from
tokens. Under concurrency, most of that is paid again for one short query each. Here a
request goes straight to the backend while fewer calls than the limit are in flight
(alone, at no cost: the one-client path is unchanged); beyond that it waits in a pending
batch with the other requests that arrived meanwhile, and when a call returns, the oldest
pending batch goes out as one call (its texts in order, a text asked twice sent once) and
each request gets its own vectors back.

The limit follows the endpoint's speed. While calls return within `share_below_s` (a
moving average; an endpoint next to the service), waiting for the one in flight costs
less than a call's own overhead, so the limit is one call. Slower (OpenAI over the
internet, 100-300 ms), waiting would add that much to a search, so up to `max_calls` go
out side by side and only requests beyond them share. Nobody waits behind a fast
endpoint's call for longer than `stall_s` (by default `share_below_s`): past that, the
call in flight is taken to be stalled and waiting batches go out beside it (up to
`max_calls`).

Bounds: `max_batch_texts` texts and `max_batch_chars` characters per call (a request
larger than that alone goes alone); requests for another model or dimension never share
a call.

Nothing is lost to sharing:

- A shared call refused as a whole for its input (HTTP 400, 413 or 422: a text too long,
  too many tokens) is retried request by request, so one bad input fails only its own
  request. Any other failure (401 after the holder's refresh and retry, rate limits,
  the endpoint unreachable) is every member's: each gets the error, nothing is re-sent.
- A call is made by one of its own requests (the batch's first), in that request's task:
  no task outlives the requests it serves. When that request is cancelled (its client went
  away), the call stops and the other members go back to the front of the queue, the next
  of them making the call.
- A request cancelled while it waits leaves its batch; its texts are not sent.

`EmbeddingRequestsCoalesced` counts the requests that rode in a call with others (EMF,
with the other metrics). `max_calls=0` turns coalescing off (every request is its own
call, as before).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from secretswap.metrics import MetricsRegistry

from kb_mcp.embeddings.port import EmbeddingsBackend
from kb_mcp.errors import EmbeddingError

__all__ = ["DEFAULT_MAX_CALLS", "CoalescingEmbeddingsBackend"]

DEFAULT_MAX_CALLS = 4
"""Calls in flight before requests start sharing, for a slow endpoint
(`KB_MCP_EMBEDDING_MAX_CALLS`)."""
DEFAULT_SHARE_BELOW_S = 0.05
"""Calls returning faster than this on average: one in flight, the rest share."""
_LATENCY_WEIGHT = 0.2
"""Weight of the newest call in the moving average of call durations."""
MAX_BATCH_TEXTS = 2048
"""OpenAI's limit on inputs per embeddings request."""
MAX_BATCH_CHARS = 100_000
"""About 25k tokens of English, well under OpenAI's 300k tokens per request."""
SPLIT_STATUSES = frozenset({400, 413, 422})
"""HTTP statuses that refuse a request for its input: a shared call is retried alone."""

_Key = tuple[str, int | None]


class _Lead:
    """The value a pending request's future gets when it is to make its batch's call."""


_LEAD = _Lead()
_ALONE = _Lead()
"""The value a member gets when its shared call was refused for its input: ask alone."""


@dataclass(eq=False)
class _Request:
    texts: Sequence[str]
    future: asyncio.Future[list[list[float]] | _Lead]
    chars: int = field(init=False)

    def __post_init__(self) -> None:
        self.chars = sum(len(text) for text in self.texts)


@dataclass(eq=False)
class _Batch:
    key: _Key
    requests: list[_Request] = field(default_factory=list)
    texts: int = 0
    chars: int = 0

    def fits(self, request: _Request, *, max_texts: int, max_chars: int) -> bool:
        return (
            self.texts + len(request.texts) <= max_texts and self.chars + request.chars <= max_chars
        )

    def add(self, request: _Request) -> None:
        self.requests.append(request)
        self.texts += len(request.texts)
        self.chars += request.chars

    def remove(self, request: _Request) -> None:
        self.requests.remove(request)
        self.texts -= len(request.texts)
        self.chars -= request.chars


class CoalescingEmbeddingsBackend:
    """An `EmbeddingsBackend` that caps calls in flight and shares calls beyond the cap."""

    def __init__(
        self,
        backend: EmbeddingsBackend,
        *,
        max_calls: int = DEFAULT_MAX_CALLS,
        max_batch_texts: int = MAX_BATCH_TEXTS,
        max_batch_chars: int = MAX_BATCH_CHARS,
        share_below_s: float = DEFAULT_SHARE_BELOW_S,
        stall_s: float | None = None,
        metrics: MetricsRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_calls < 0:
            raise ValueError("max_calls must be 0 (no coalescing) or more")
        if max_batch_texts < 1 or max_batch_chars < 1:
            raise ValueError("batch bounds must be at least 1")
        self._backend = backend
        self.max_calls = max_calls
        self._max_texts = max_batch_texts
        self._max_chars = max_batch_chars
        self._share_below_s = share_below_s
        self._stall_s = share_below_s if stall_s is None else stall_s
        self._clock = clock
        self.latency_s: float | None = None
        """Moving average of call durations (None before the first call ends)."""
        self.in_flight = 0
        self._pending: deque[_Batch] = deque()
        registry = metrics or MetricsRegistry()
        self._coalesced = registry.counter("EmbeddingRequestsCoalesced")

    def __repr__(self) -> str:
        return (
            f"CoalescingEmbeddingsBackend(max_calls={self.max_calls}, "
            f"in_flight={self.in_flight}, waiting={self.waiting})"
        )

    @property
    def waiting(self) -> int:
        """Requests waiting in pending batches."""
        return sum(len(batch.requests) for batch in self._pending)

    @property
    def limit(self) -> int:
        """Calls allowed in flight now: one while calls are fast, else `max_calls`."""
        fast = self.latency_s is not None and self.latency_s <= self._share_below_s
        return 1 if fast else self.max_calls

    @property
    def coalesced(self) -> int:
        """Requests that shared a call with others, since start."""
        return self._coalesced.value

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        """One vector per text, in order (the `EmbeddingsBackend` port)."""
        if self.max_calls == 0:
            return await self._backend.create_embeddings(texts, model=model, dimensions=dimensions)
        if self.in_flight < self.limit and not self._pending:
            self.in_flight += 1
            started = self._clock()
            try:
                vectors = await self._backend.create_embeddings(
                    texts, model=model, dimensions=dimensions
                )
            except asyncio.CancelledError:
                self._release()  # cut short: its duration says nothing of the endpoint
                raise
            except BaseException:
                self._release(started)
                raise
            self._release(started)
            return vectors
        return await self._wait((model, dimensions), texts)

    async def _wait(self, key: _Key, texts: Sequence[str]) -> list[list[float]]:
        """Join a pending batch; answer from its call, or make it when promoted."""
        request = _Request(texts, asyncio.get_running_loop().create_future())
        batch = self._batch_for(key, request)
        try:
            if self.limit < self.max_calls:
                # Waiting behind a fast endpoint's call: at most `stall_s`. Past that the
                # call in flight is slow (a stalled connection, a spike) and more go out.
                done, _ = await asyncio.wait((request.future,), timeout=self._stall_s)
                if not done:
                    self._fill(self.max_calls)
            outcome = await request.future
        except asyncio.CancelledError:
            self._abandon(batch, request)
            raise
        if outcome is _LEAD:
            return await self._lead(batch, request)
        if outcome is _ALONE:
            return await self._backend.create_embeddings(texts, model=key[0], dimensions=key[1])
        assert isinstance(outcome, list)
        return outcome

    def _batch_for(self, key: _Key, request: _Request) -> _Batch:
        for batch in reversed(self._pending):
            if batch.key == key:
                if batch.fits(request, max_texts=self._max_texts, max_chars=self._max_chars):
                    batch.add(request)
                    return batch
                break  # the newest batch of this key is full: start the next one
        batch = _Batch(key)
        batch.add(request)
        self._pending.append(batch)
        return batch

    def _abandon(self, batch: _Batch, request: _Request) -> None:
        """A waiting (or just promoted) request was cancelled: take it out of its batch."""
        future = request.future
        if future.done() and not future.cancelled() and future.result() is _LEAD:
            # Promoted, but gone before making the call: the next member leads instead.
            batch.remove(request)
            if not _promote(batch):
                self._release()
            return
        future.cancel()  # done from now on: a call made later leaves its texts out
        if batch in self._pending:
            batch.remove(request)
            if not batch.requests:
                self._pending.remove(batch)

    async def _lead(self, batch: _Batch, leader: _Request) -> list[list[float]]:
        """Make `batch`'s call (its slot is already counted); answer every member."""
        model, dimensions = batch.key
        # A member cancelled since the batch was promoted is done already: not sent.
        members = [r for r in batch.requests if r is leader or not r.future.done()]
        others = [request for request in members if request is not leader]
        asked: list[str] = []
        seen: dict[str, int] = {}
        for request in members:
            for text in request.texts:
                if text not in seen:
                    seen[text] = len(asked)
                    asked.append(text)
        if others:
            self._coalesced.value += len(members)
        started = self._clock()
        try:
            answer = await self._backend.create_embeddings(
                asked, model=model, dimensions=dimensions
            )
        except asyncio.CancelledError:
            # The leader's client went away: the others go back to the head of the queue.
            batch.remove(leader)
            self._release(requeue=batch if batch.requests else None)
            raise
        except EmbeddingError as exc:
            self._release(started)
            if others and exc.status in SPLIT_STATUSES:
                _answer(others, _ALONE)
                return await self._backend.create_embeddings(
                    leader.texts, model=model, dimensions=dimensions
                )
            _fail(others, exc)
            raise
        except Exception as exc:
            self._release(started)
            _fail(others, exc)
            raise
        except BaseException:  # the process is going down: nobody is left waiting
            self._release(started)
            _fail(others, EmbeddingError("embeddings call interrupted"))
            raise
        self._release(started)
        if len(answer) != len(asked):
            error = EmbeddingError(
                f"embeddings endpoint returned {len(answer)} vectors for {len(asked)} texts",
                hint="check OPENAI_BASE_URL points at an OpenAI-compatible embeddings API",
            )
            _fail(others, error)
            raise error
        for request in others:
            if not request.future.done():
                request.future.set_result([list(answer[seen[text]]) for text in request.texts])
        return [answer[seen[text]] for text in leader.texts]

    def _release(self, started: float | None = None, *, requeue: _Batch | None = None) -> None:
        """A call ended (it began at `started`, None when it did not run): its slot goes to
        the oldest pending batch, whose first request leads."""
        if started is not None:
            took = self._clock() - started
            last = self.latency_s
            self.latency_s = took if last is None else last + _LATENCY_WEIGHT * (took - last)
        self.in_flight -= 1
        if requeue is not None:
            self._pending.appendleft(requeue)
        self._fill(self.limit)

    def _fill(self, limit: int) -> None:
        """Promote the oldest pending batches while fewer than `limit` calls are in flight."""
        while self.in_flight < limit and self._pending:
            if _promote(self._pending.popleft()):
                self.in_flight += 1


def _promote(batch: _Batch) -> bool:
    """Make the first member still waiting the batch's leader; False when none waits."""
    for request in batch.requests:
        if not request.future.done():
            request.future.set_result(_LEAD)
            return True
    return False


def _answer(requests: Sequence[_Request], value: _Lead) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_result(value)


def _fail(requests: Sequence[_Request], exc: Exception) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_exception(exc)
