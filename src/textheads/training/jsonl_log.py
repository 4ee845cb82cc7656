"""`train_log.jsonl`, the run's log: one JSON record a line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JsonlLog:
    """`train_log.jsonl`: one JSON record a line, appended. Every record of a run goes through
    `write`, and only the main process writes."""

    def __init__(self, path: Path, *, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
