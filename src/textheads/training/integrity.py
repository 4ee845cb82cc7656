"""Is a file that textheads wrote whole? Checked before it is trusted (resumed from, read from cache)."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file's framing, or None when its size is the one its
    header declares (8-byte length, JSON header, then the tensors' bytes back to back).

    Reads only the header: cheap enough to check every file before it is loaded."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return f"truncated: {size} bytes, too short for a safetensors header"
            (length,) = struct.unpack("<Q", prefix)
            if 8 + length > size:
                return f"truncated: {size} bytes, its header alone declares {8 + length}"
            header = json.loads(handle.read(length))
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
        expected = 8 + length + max(ends, default=0)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return "not a safetensors file (its header is not valid)"
    if size != expected:
        return f"{'truncated' if size < expected else 'longer than written'}: {size} bytes, its header declares {expected}"
    return None
