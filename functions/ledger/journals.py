"""DynamoDB adapter that reads journal entries back by their ids: what a journal id already holds when
it arrives again. Reads only (GetItem), so the ledger stays append-only by IAM."""

from __future__ import annotations

from collections.abc import Sequence

from functions.common.dynamo import plain, table
from functions.ledger.domain import Entry


class DynamoJournalReader:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def entries(self, entry_ids: Sequence[str]) -> list[Entry]:
        found = []
        for entry_id in entry_ids:
            item = table(self.table_name).get_item(Key={"entry_id": entry_id}, ConsistentRead=True).get("Item")
            if item is not None:
                found.append(Entry.model_validate(plain(item)))
        return found
