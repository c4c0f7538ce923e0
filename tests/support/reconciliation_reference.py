"""The reconciler's row-by-row reference, which the function's stream path (`reconcile_lines`, with its
column-wise fast paths) is checked against: every line parsed by `parse_lines`, every chunk of `CHUNK`
rows classified by `classify_chunk`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from functions.reconciliation.classify import classify_chunk
from functions.reconciliation.models import CHUNK, Run
from functions.reconciliation.ports import BreaksLog, ClaimStore, OrderSource, PostingSink
from functions.reconciliation.settlement_file import Parsed, parse_lines, settlement_blocks
from functions.reconciliation.tally import Tally


def settlement_rows(lines: Iterable[str]) -> Iterator[Parsed]:
    """Each data row of the file, parsed line by line, with its physical line number; the header must be
    the contract's (raises NotASettlementFile, lazily)."""
    for number, block in settlement_blocks(lines):
        yield from parse_lines(number, block)


def chunked(items: Iterable[Parsed], size: int = CHUNK) -> Iterator[list[Parsed]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def reconcile_rows(
    run: Run,
    items: Iterable[Parsed],
    *,
    orders: OrderSource,
    claims: ClaimStore,
    postings: PostingSink,
    breaks_log: BreaksLog,
) -> Tally:
    """Every row in one pass, in chunks of `CHUNK` (the stream path's chunks); `find_missing` completes it."""
    tally = Tally(run.run_id, breaks_log)
    for chunk in chunked(items):
        tally.merge(
            classify_chunk(run.run_id, chunk, sender=run.sender, orders=orders, claims=claims, postings=postings)
        )
    return tally
