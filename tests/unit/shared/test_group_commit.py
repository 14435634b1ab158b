"""Group commit: concurrent items share one apply; one bad item fails alone."""

from __future__ import annotations

import asyncio

import pytest

from salesrail.group_commit import GroupCommit


class Store:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def apply(self, items: list[int]) -> list[int | BaseException]:
        await asyncio.sleep(0.01)  # the transaction's round trips
        if 13 in items and len(items) > 1:
            raise RuntimeError("the batch's transaction failed")
        if items == [13]:
            raise RuntimeError("13 cannot be stored")
        self.batches.append(items)
        return [ValueError(f"{i} is refused") if i < 0 else i * 10 for i in items]


async def run(group: GroupCommit[int, int], items: list[int]) -> list[object]:
    group.start()
    try:
        return await asyncio.gather(*(group.submit(i) for i in items), return_exceptions=True)
    finally:
        await group.stop()


async def test_items_arriving_together_share_one_apply_and_each_gets_its_result() -> None:
    store = Store()
    items = list(range(20, 40))
    results = await run(GroupCommit(store.apply, name="t"), items)
    assert results == [i * 10 for i in items]
    assert len(store.batches) <= 2  # the first alone, the rest queued meanwhile
    assert sorted(i for b in store.batches for i in b) == items


async def test_a_refused_item_fails_alone_and_a_failing_batch_is_retried_item_by_item() -> None:
    store = Store()
    results = await run(GroupCommit(store.apply, name="t", max_batch=5), [1, -2, 13, 4, 5])
    assert results[0] == 10 and results[3] == 40 and results[4] == 50
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], RuntimeError) and "13 cannot" in str(results[2])


async def test_recover_may_still_answer_for_an_item_that_failed_alone() -> None:
    store = Store()

    async def recover(item: int, exc: Exception) -> int:
        if item == 13:
            return -13  # e.g. another replica stored it first
        raise exc

    results = await run(GroupCommit(store.apply, name="t", recover=recover), [13])
    assert results == [-13]


async def test_stop_applies_what_is_queued() -> None:
    store = Store()
    group: GroupCommit[int, int] = GroupCommit(store.apply, name="t")
    group.start()
    pending = [asyncio.ensure_future(group.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    await group.stop()
    assert [p.result() for p in pending] == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("max_batch", [1, 3])
async def test_batches_never_exceed_max_batch(max_batch: int) -> None:
    store = Store()
    await run(GroupCommit(store.apply, name="t", max_batch=max_batch), list(range(1, 10)))
    assert max(len(b) for b in store.batches) <= max_batch


async def overlapping(concurrency: int) -> tuple[int, list[list[int]]]:
    """The most batches in `apply` at once, and the batches, for items arriving while the
    first batch waits on its (slow) database."""
    in_apply = most = 0
    batches: list[list[int]] = []

    async def apply(items: list[int]) -> list[int | BaseException]:
        nonlocal in_apply, most
        in_apply += 1
        most = max(most, in_apply)
        batches.append(items)
        await asyncio.sleep(0.05)
        in_apply -= 1
        return list(items)

    group = GroupCommit(apply, name="t", concurrency=concurrency)
    group.start()
    try:
        first = asyncio.create_task(group.submit(1))
        await asyncio.sleep(0.01)  # the first batch is in apply now
        results = await asyncio.gather(first, *(group.submit(i) for i in (2, 3, 4)))
    finally:
        await group.stop()
    assert results == [1, 2, 3, 4]
    return most, batches


async def test_with_concurrency_the_next_batch_is_applied_while_one_waits() -> None:
    assert await overlapping(1) == (1, [[1], [2, 3, 4]])
    most, batches = await overlapping(2)
    assert most == 2 and batches == [[1], [2, 3, 4]]


def test_concurrency_below_one_is_refused() -> None:
    async def apply(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError, match="concurrency"):
        GroupCommit(apply, name="t", concurrency=0)
