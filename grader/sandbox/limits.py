"""Resource limits of a graded child: RLIMITs always, settable through the environment.

Every child gets caps on address space, CPU seconds, file size, open files and core dumps,
so a memory hog or an endless loop ends as a clear failure of one exercise. The cgroup
caps (memory, number of processes) live in `grader.sandbox.cgroups`.
"""

from __future__ import annotations

import logging
import math
import os
import resource
from dataclasses import dataclass

logger = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
_UNITS = {"": 1, "K": 1024, "M": MIB, "G": GIB}


def parse_size(text: str) -> int:
    """Bytes of a size such as ``2G``, ``512M`` or ``1073741824``; raises ValueError."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = cleaned[-1:] if cleaned[-1:] in _UNITS else ""
    number = float(cleaned[: len(cleaned) - len(unit)])
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"not a positive size: {text!r}")
    return int(number * _UNITS[unit])


@dataclass(frozen=True)
class Limits:
    """What one graded child may use.

    ``memory`` caps the address space (RLIMIT_AS) and, where a writable cgroup exists,
    the resident memory of the child and everything it starts; ``processes`` caps the
    tasks (processes and threads) of that cgroup.
    """

    memory: int = 2 * GIB
    processes: int = 64
    address_space: int | None = None  # RLIMIT_AS; None: the same as ``memory``
    open_files: int = 512
    file_size: int = 64 * MIB
    cpu_margin: float = 5.0

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by ``CRONKATA_MEMORY_LIMIT`` (e.g. ``3G``) and
        ``CRONKATA_PROCESS_LIMIT`` (e.g. ``256``)."""
        memory = os.environ.get("CRONKATA_MEMORY_LIMIT", "").strip()
        processes = os.environ.get("CRONKATA_PROCESS_LIMIT", "").strip()
        return cls(
            memory=parse_size(memory) if memory else cls.memory,
            processes=int(processes) if processes else cls.processes,
        )

    def cpu_seconds(self, timeout: float) -> int:
        """The CPU-time cap of a child whose wall-clock timeout is ``timeout``."""
        return max(1, math.ceil(timeout + self.cpu_margin)) if math.isfinite(timeout) else 3600


def _cap(which: int, value: int) -> None:
    """Lower a limit (never raise it above the hard limit the grader itself has)."""
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))


def apply_rlimits(limits: Limits, timeout: float) -> None:
    """Apply the RLIMITs in the current (child) process; they are inherited by its children."""
    _cap(resource.RLIMIT_AS, limits.address_space or limits.memory)
    _cap(resource.RLIMIT_CPU, limits.cpu_seconds(timeout))
    _cap(resource.RLIMIT_FSIZE, limits.file_size)
    _cap(resource.RLIMIT_NOFILE, limits.open_files)
    _cap(resource.RLIMIT_CORE, 0)


def describe_limit_signal(signal_name: str, limits: Limits, timeout: float) -> str | None:
    """What a signal that a limit sends means, in words (None for other signals)."""
    if signal_name == "SIGXCPU":
        return (
            f"used more than {limits.cpu_seconds(timeout)} s of CPU time and was stopped: "
            "an endless loop that computes without pause?"
        )
    return None
