"""torch.distributed, as torchrun sets it up: process group, rank, sharding, reductions.

odepipe runs on PyTorch's own distributed engine: torchrun starts the processes and sets
RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR; this module joins them (gloo on CPU, nccl on CUDA) with
a timeout, so a rank that dies ends the job with an error instead of a hang.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Sequence

import torch
import torch.distributed as dist

from ..errors import OdepipeError


def requested() -> bool:
    """True when started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup(device: torch.device) -> None:
    """Joins the process group torchrun described (idempotent). The timeout, from
    ``ODEPIPE_DIST_TIMEOUT`` seconds (default 300), bounds every collective."""
    if not requested() or active():
        return
    if not dist.is_available():
        raise OdepipeError("this torch build has no torch.distributed; run without torchrun")
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=float(os.environ.get("ODEPIPE_DIST_TIMEOUT", "300")))
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, timeout=timeout)


def local_device(device: torch.device) -> torch.device:
    """Under torchrun each process takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and requested() and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def teardown() -> None:
    if active():
        dist.destroy_process_group()


def shard(items: Sequence[Any]) -> List[Any]:
    """This rank's share of a list: every world()-th item, starting at rank()."""
    return list(items)[rank() :: world()]


def broadcast_object(value: Any) -> Any:
    """Rank 0's value on every rank."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_dict(values: Dict[str, float]) -> Dict[str, float]:
    """Sums a dict of floats over ranks (same keys on every rank)."""
    if not active():
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.cpu().tolist()))


def barrier() -> None:
    if active():
        dist.barrier()
