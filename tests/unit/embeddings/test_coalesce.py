"""CoalescingEmbeddingsBackend: calls in flight, shared calls, and what each request gets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from secretswap.metrics import MetricsRegistry

from kb_mcp.embeddings.coalesce import CoalescingEmbeddingsBackend
from kb_mcp.errors import EmbeddingAuthError, EmbeddingError

MODEL = "text-embedding-3-small"


def vector(text: str) -> list[float]:
    """A vector that tells which text it belongs to."""
    return [float(len(text)), float(sum(map(ord, text)))]


@dataclass
class GatedBackend:
    """Records each call; every call waits until the test opens its gate."""

    calls: list[list[str]] = field(default_factory=list)
    gates: list[asyncio.Event] = field(default_factory=list)
    failures: dict[int, Exception] = field(default_factory=dict)
    """Call number -> what it raises once its gate opens."""
    refuse: set[str] = field(default_factory=set)
    """Texts whose presence makes a call fail with HTTP 400."""
    short: bool = False
    """Answer one vector too few."""
    on_return: dict[int, Callable[[], object]] = field(default_factory=dict)
    """Call number -> what runs just before it returns."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set on every call made."""

    async def create_embeddings(
        self, texts: Sequence[str], *, model: str, dimensions: int | None
    ) -> list[list[float]]:
        number = len(self.calls)
        self.calls.append(list(texts))
        self.changed.set()
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if number in self.failures:
            raise self.failures[number]
        if self.refuse & set(texts):
            raise EmbeddingError("embeddings endpoint answered http 400", status=400)
        answer = [vector(text) for text in texts]
        if number in self.on_return:
            self.on_return[number]()
        return answer[:-1] if self.short else answer

    def open(self, number: int) -> None:
        self.gates[number].set()

    async def reached(self, calls: int) -> None:
        """Return once `calls` calls have been made (awaits the calls, not a clock)."""
        while len(self.calls) < calls:
            await self.changed.wait()
            self.changed.clear()


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the event loop until `condition` holds (no wall-clock wait)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def coalescer(
    backend: GatedBackend, *, max_calls: int = 1, **kwargs: object
) -> CoalescingEmbeddingsBackend:
    return CoalescingEmbeddingsBackend(backend, max_calls=max_calls, **kwargs)  # type: ignore[arg-type]


def ask(
    shared: CoalescingEmbeddingsBackend, *texts: str, model: str = MODEL
) -> asyncio.Task[list[list[float]]]:
    return asyncio.ensure_future(shared.create_embeddings(list(texts), model=model, dimensions=2))


async def call_in_flight(
    shared: CoalescingEmbeddingsBackend, backend: GatedBackend, text: str = "a"
) -> asyncio.Task[list[list[float]]]:
    """A request whose call has been made and is held open by its gate."""
    made = len(backend.calls)
    task = ask(shared, text)
    await until(lambda: len(backend.calls) == made + 1)
    return task


async def waiting(
    shared: CoalescingEmbeddingsBackend, *texts: str
) -> list[asyncio.Task[list[list[float]]]]:
    """One request per text, returned once every one of them waits for a call."""
    before = shared.waiting
    tasks = [ask(shared, text) for text in texts]
    await until(lambda: shared.waiting == before + len(texts))
    return tasks


async def opened_then_called(backend: GatedBackend, number: int, calls: int) -> None:
    """Let call `number` return, then wait until `calls` calls have been made."""
    backend.open(number)
    await until(lambda: len(backend.calls) == calls)


async def test_a_lone_request_goes_straight_to_the_backend() -> None:
    """Below the limit a request is its own call, and nothing counts as coalesced."""
    backend = GatedBackend()
    metrics = MetricsRegistry()
    shared = coalescer(backend, max_calls=2, metrics=metrics)
    first = await call_in_flight(shared, backend)
    backend.open(0)
    assert await first == [vector("a")]
    assert metrics.total("EmbeddingRequestsCoalesced") == 0
    assert shared.in_flight == 0


async def test_requests_arriving_during_a_call_share_the_next_one() -> None:
    """At the limit, waiting requests go out together; each gets its own vectors, in order."""
    backend = GatedBackend()
    metrics = MetricsRegistry()
    shared = coalescer(backend, max_calls=1, metrics=metrics)
    first = await call_in_flight(shared, backend)
    second, third, fourth = ask(shared, "b", "c"), ask(shared, "c"), ask(shared, "d")
    await until(lambda: shared.waiting == 3)
    await opened_then_called(backend, 0, calls=2)
    assert backend.calls[1] == ["b", "c", "d"]  # "c" asked twice, sent once
    backend.open(1)
    assert await first == [vector("a")]
    assert await second == [vector("b"), vector("c")]
    assert await third == [vector("c")]
    assert await fourth == [vector("d")]
    assert metrics.total("EmbeddingRequestsCoalesced") == 3
    assert (shared.in_flight, shared.waiting) == (0, 0)


async def test_a_slow_endpoint_gets_max_calls_side_by_side() -> None:
    """Calls slower than share_below_s: up to max_calls in flight before anyone waits."""
    backend = GatedBackend()
    clock = Clock()
    shared = coalescer(backend, max_calls=3, share_below_s=0.05, clock=clock)
    tasks = [ask(shared, text) for text in "abcd"]
    await until(lambda: len(backend.calls) == 3 and shared.waiting == 1)
    clock.now = 0.2  # the first call took 200 ms: slow, the limit stays at three
    backend.open(0)
    await until(lambda: len(backend.calls) == 4)
    assert shared.latency_s == pytest.approx(0.2)
    assert shared.limit == 3
    for number in (1, 2, 3):
        backend.open(number)
    assert await asyncio.gather(*tasks) == [[vector(text)] for text in "abcd"]


async def test_a_fast_endpoint_gets_one_call_in_flight() -> None:
    """Once calls are seen to return within share_below_s, the second request already waits."""
    backend = GatedBackend()
    clock = Clock()
    shared = coalescer(backend, max_calls=4, share_below_s=0.05, stall_s=3600, clock=clock)
    warm = ask(shared, "warm")
    await until(lambda: len(backend.calls) == 1)
    clock.now = 0.004
    backend.open(0)
    await warm
    assert shared.limit == 1
    first, second, third = ask(shared, "a"), ask(shared, "b"), ask(shared, "c")
    await until(lambda: len(backend.calls) == 2 and shared.waiting == 2)
    backend.open(1)
    await until(lambda: len(backend.calls) == 3)
    assert backend.calls[2] == ["b", "c"]
    backend.open(2)
    assert [await first, await second, await third] == [[vector(t)] for t in "abc"]


async def test_behind_a_stalled_call_waiting_requests_go_out_beside_it() -> None:
    """A fast endpoint's call that hangs: after stall_s the waiting batch is sent anyway."""
    backend = GatedBackend()
    clock = Clock()
    shared = coalescer(backend, max_calls=4, share_below_s=0.05, stall_s=0.01, clock=clock)
    warm = ask(shared, "warm")
    await until(lambda: len(backend.calls) == 1)
    clock.now = 0.004
    backend.open(0)
    await warm
    stalled = ask(shared, "stalled")
    await until(lambda: len(backend.calls) == 2)
    waiting = [ask(shared, "b"), ask(shared, "c")]
    await asyncio.wait_for(backend.reached(3), timeout=10)  # the stall timer fired
    assert backend.calls[2] == ["b", "c"]
    backend.open(2)
    assert await asyncio.gather(*waiting) == [[vector("b")], [vector("c")]]
    assert not stalled.done()
    backend.open(1)
    assert await stalled == [vector("stalled")]


async def test_a_shared_call_refused_for_its_input_is_retried_request_by_request() -> None:
    """HTTP 400 on a shared call: each request alone, so only the bad one fails."""
    backend = GatedBackend(refuse={"bad"})
    shared = coalescer(backend)
    first = await call_in_flight(shared, backend)
    good, bad, other = await waiting(shared, "b", "bad", "c")
    await opened_then_called(backend, 0, calls=2)
    backend.open(1)  # ["b", "bad", "c"] refused: then one call each
    await until(lambda: len(backend.calls) == 5)
    assert sorted(map(tuple, backend.calls[2:])) == [("b",), ("bad",), ("c",)]
    for number in (2, 3, 4):
        backend.open(number)
    assert await first == [vector("a")]
    assert await good == [vector("b")]
    assert await other == [vector("c")]
    with pytest.raises(EmbeddingError, match="http 400"):
        await bad


@pytest.mark.parametrize(
    "failure",
    [
        EmbeddingAuthError("embeddings endpoint refused the api key"),
        EmbeddingError("embeddings endpoint answered http 429", status=429),
        EmbeddingError("embeddings endpoint unreachable (APIConnectionError)"),
    ],
)
async def test_any_other_failure_of_a_shared_call_is_every_members(failure: Exception) -> None:
    """Auth, rate limit, unreachable: each member gets the error and nothing is re-sent."""
    backend = GatedBackend(failures={1: failure})
    shared = coalescer(backend)
    first = await call_in_flight(shared, backend)
    members = await waiting(shared, "b", "c")
    await opened_then_called(backend, 0, calls=2)
    backend.open(1)
    results = await asyncio.gather(*members, return_exceptions=True)
    assert all(result is failure for result in results)
    assert await first == [vector("a")]
    assert len(backend.calls) == 2
    assert shared.in_flight == 0


async def test_a_misaligned_answer_to_a_shared_call_fails_every_member() -> None:
    """One vector too few can't be split between requests: none gets a wrong vector."""
    backend = GatedBackend()
    shared = coalescer(backend)
    first = await call_in_flight(shared, backend)
    members = await waiting(shared, "b", "c")
    backend.open(0)
    await first
    await until(lambda: len(backend.calls) == 2)
    backend.short = True
    backend.open(1)
    results = await asyncio.gather(*members, return_exceptions=True)
    assert all(isinstance(r, EmbeddingError) and "1 vectors for 2" in str(r) for r in results)


async def test_a_request_cancelled_while_waiting_is_not_sent() -> None:
    """A waiting request that goes away leaves its batch; the others are answered."""
    backend = GatedBackend()
    shared = coalescer(backend)
    first = await call_in_flight(shared, backend)
    gone, kept = await waiting(shared, "gone", "kept")
    gone.cancel()
    await until(lambda: shared.waiting == 1)
    await opened_then_called(backend, 0, calls=2)
    assert backend.calls[1] == ["kept"]
    backend.open(1)
    assert await kept == [vector("kept")]
    assert await first == [vector("a")]
    assert gone.cancelled()


async def test_when_the_request_making_a_shared_call_goes_away_the_next_member_makes_it() -> None:
    """The leader cancelled mid-call: the other members are served by a call of their own."""
    backend = GatedBackend()
    shared = coalescer(backend)
    first = await call_in_flight(shared, backend)
    leader, member = await waiting(shared, "lead", "member")
    await opened_then_called(backend, 0, calls=2)
    assert backend.calls[1] == ["lead", "member"]
    leader.cancel()
    await until(lambda: len(backend.calls) == 3)
    assert backend.calls[2] == ["member"]
    backend.open(2)
    assert await member == [vector("member")]
    assert leader.cancelled()
    assert (shared.in_flight, shared.waiting) == (0, 0)
    await first


async def test_a_request_cancelled_after_its_batch_went_out_is_left_out_of_the_call() -> None:
    """Cancelled before its batch's call is made: its texts are not in the call."""
    backend = GatedBackend()
    shared = coalescer(backend)
    first = await call_in_flight(shared, backend)
    leader, gone = await waiting(shared, "lead", "gone")
    backend.open(0)
    gone.cancel()  # its batch is promoted before its task learns of the cancellation
    await until(lambda: len(backend.calls) == 2)
    assert backend.calls[1] == ["lead"]
    backend.open(1)
    assert await leader == [vector("lead")]
    assert gone.cancelled()
    await first


async def test_a_request_promoted_then_cancelled_hands_the_call_to_the_next() -> None:
    """Cancelled between being told to lead and leading: the next member leads instead."""
    backend = GatedBackend()
    shared = coalescer(backend)
    first = await call_in_flight(shared, backend)
    leader, member = await waiting(shared, "lead", "member")
    loop = asyncio.get_running_loop()
    # Runs after the first call's end promotes `leader`, before `leader` wakes to lead.
    backend.on_return[0] = lambda: loop.call_soon(leader.cancel)
    await opened_then_called(backend, 0, calls=2)
    assert backend.calls[1] == ["member"]
    backend.open(1)
    assert await member == [vector("member")]
    assert leader.cancelled()
    assert (shared.in_flight, shared.waiting) == (0, 0)
    await first


async def test_batches_respect_their_bounds_and_never_mix_models() -> None:
    """max_batch_texts and max_batch_chars split the waiting requests; models stay apart."""
    backend = GatedBackend()
    shared = coalescer(backend, max_batch_texts=2, max_batch_chars=10)
    first = await call_in_flight(shared, backend)
    tasks = [
        ask(shared, "b"),
        ask(shared, "c"),
        ask(shared, "d"),  # third text: a new batch
        ask(shared, "e", model="other-model"),
        ask(shared, "x" * 20),  # over max_batch_chars alone: a batch of its own
    ]
    await until(lambda: shared.waiting == 5)
    backend.open(0)
    for number in range(1, 5):
        await until(lambda n=number: len(backend.calls) == n + 1)  # type: ignore[misc]
        backend.open(number)
    await asyncio.gather(*tasks)
    assert backend.calls[1:] == [["b", "c"], ["d"], ["e"], ["x" * 20]]
    await first


async def test_max_calls_zero_turns_coalescing_off() -> None:
    """Every request is its own call, however many are in flight."""
    backend = GatedBackend()
    shared = coalescer(backend, max_calls=0)
    tasks = [ask(shared, text) for text in "abc"]
    await until(lambda: len(backend.calls) == 3)
    for number in range(3):
        backend.open(number)
    assert await asyncio.gather(*tasks) == [[vector(text)] for text in "abc"]


def test_bad_bounds_are_refused() -> None:
    """A negative max_calls or an empty batch bound is a ValueError."""
    with pytest.raises(ValueError, match="max_calls"):
        coalescer(GatedBackend(), max_calls=-1)
    with pytest.raises(ValueError, match="batch bounds"):
        coalescer(GatedBackend(), max_batch_texts=0)


async def test_a_direct_call_cancelled_or_failing_frees_its_slot() -> None:
    """Cancelled: no duration is learnt from it; failed: the error is the caller's."""
    backend = GatedBackend(failures={1: EmbeddingError("embeddings endpoint answered http 503")})
    clock = Clock()
    shared = coalescer(backend, clock=clock)
    cancelled = ask(shared, "a")
    await until(lambda: len(backend.calls) == 1)
    clock.now = 9.0
    cancelled.cancel()
    await until(cancelled.done)
    assert (shared.in_flight, shared.latency_s) == (0, None)
    failing = ask(shared, "b")
    await until(lambda: len(backend.calls) == 2)
    backend.open(1)
    with pytest.raises(EmbeddingError, match="503"):
        await failing
    assert shared.in_flight == 0


async def test_an_unexpected_error_of_a_shared_call_reaches_every_member() -> None:
    """Not an EmbeddingError (a bug below): every member sees it rather than hanging."""
    failure = RuntimeError("backend bug")
    backend = GatedBackend(failures={1: failure})
    shared = coalescer(backend)
    first = await call_in_flight(shared, backend)
    members = await waiting(shared, "b", "c")
    await opened_then_called(backend, 0, calls=2)
    backend.open(1)
    assert await asyncio.gather(*members, return_exceptions=True) == [failure, failure]
    assert shared.in_flight == 0
    await first
