"""Device and thread choice in one place, so timings and parallel runs agree on it."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from nasoa_lib.errors import InvalidParallelSetup


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads(n: int) -> int:
    """Pin torch's intra-op threads (``n`` >= 1) and return the value now in force."""
    if n < 1:
        raise InvalidParallelSetup(f"threads must be >= 1, got {n}",
                                   hint="set threads to 1 or more (the profile's threads: in configs/profiles.yaml)")
    torch.set_num_threads(n)
    return torch.get_num_threads()


@contextmanager
def pinned_threads(threads: int | None) -> Iterator[int]:
    """Run with ``threads`` torch intra-op threads (``None``: leave as is), restoring the previous
    count afterwards; yields the count in force."""
    previous = torch.get_num_threads()
    if threads is not None:
        set_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def describe_device(device: torch.device | str | None = None) -> str:
    """Human-readable device name for records and table captions."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()}threads"
