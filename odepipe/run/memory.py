"""CPU training (and ``odepipe evaluate``) keeps the memory it frees instead of handing it back
to the operating system.

Why: with glibc's default, self-adjusting thresholds, the large tensors of a training step
(logits over the vocabulary and their gradients, the recurrent net's gates) are served as
fresh memory maps or from heap pages that are trimmed away when the step frees them, and the
next step faults them back in, one zeroed 4 KiB page at a time. On one thread, the
real-English VAE's step took 2,600-7,500 minor page faults and a plain GRU language-model
loop of the same sizes 2,400-4,400. With the mmap threshold fixed at glibc's largest (32 MiB)
and the heap trimmed only past 1 GiB free, faults come only while the heap grows to a new
peak (a batch longer than any before): 0-410 a step for the VAE and 0-80 for the loop, over
three blocks of 20 steps (docs/text.md, "Faster training").

jemalloc and tcmalloc, the allocators PyTorch's CPU performance guide recommends, keep freed
memory this way by default. They are loaded with LD_PRELOAD before the process starts, though,
which a library cannot do for its caller, so odepipe sets glibc's own ``mallopt`` from inside.
The cost: the process's resident memory stays near its peak until it exits. The recipe key
``train.keep_memory=false`` leaves the allocator as it was.
"""

from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: the largest mmap threshold glibc accepts on a 64-bit machine; larger blocks are still mapped
MMAP_THRESHOLD = 32 << 20
#: free memory at the top of the heap kept before any of it is returned
TRIM_THRESHOLD = 1 << 30


def glibc() -> bool:
    """Whether this process runs on glibc (mallopt exists and means what this module says)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or not glibc
        return False


def keep_freed_memory() -> bool:
    """Sets glibc's mmap and trim thresholds for the whole process. Returns whether both were
    set (False, and nothing changed, off glibc). Calling it again changes nothing more."""
    if not glibc():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mapped = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trimmed = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mapped and trimmed)


def keep_memory_on(device: "torch.device", keep: bool) -> bool:
    """What training and ``odepipe evaluate`` call with the recipe's ``train.keep_memory``: keeps
    freed memory when asked to and the work runs on the CPU (CUDA memory has its own caching
    allocator). Returns whether the thresholds were set."""
    return keep and device.type == "cpu" and keep_freed_memory()
