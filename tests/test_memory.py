"""odepipe.run.memory: CPU training and evaluation keep freed memory in the process (glibc's mallopt).

Each check runs in a fresh interpreter: the setting is process-wide and cannot be undone, so
the test process's own allocator state says nothing. glibc's mallinfo2 shows where a block
came from: a freshly mapped region (``hblkhd``) or the heap, and what the heap keeps free
(``fordblks``) after the block is released.
"""

import json
import subprocess
import sys

import pytest
from conftest import TINY_SPIRAL

from odepipe.run.memory import glibc

PROBE = r"""
import ctypes, json, sys
import torch
from odepipe.run.memory import keep_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
if sys.argv[1] == "train":
    import odepipe
    recipe = odepipe.load_recipe("spiral", json.loads(sys.argv[2]))
    odepipe.train(recipe, sys.argv[3], progress=False)
    kept = None
elif sys.argv[1] == "evaluate":
    from odepipe.cli import cli
    cli.main(["evaluate", sys.argv[2], "--samples", "2", "--items", "4"], standalone_mode=False)
    kept = None
elif sys.argv[1] == "keep":
    kept = keep_freed_memory()
else:
    kept = None
block = torch.ones(5 << 20)  # 20 MiB, written
mapped = libc.mallinfo2().hblkhd
del block
print(json.dumps({"kept": kept, "mapped": mapped, "free_in_heap": libc.mallinfo2().fordblks}))
"""

MIB = 1 << 20


def probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


needs_glibc = pytest.mark.skipif(not glibc(), reason="mallopt is glibc's")


@needs_glibc
def test_a_large_block_comes_from_the_heap_and_stays_there_after_free():
    system, kept = probe("system"), probe("keep")
    assert kept["kept"] is True
    assert system["mapped"] >= 20 * MIB  # glibc's default: a block this large is a fresh map
    assert kept["mapped"] < 20 * MIB <= kept["free_in_heap"]  # heap, and not trimmed away


@needs_glibc
@pytest.mark.parametrize("keep", ["true", "false"])
def test_training_on_cpu_sets_it_unless_the_recipe_says_not_to(tmp_path, keep):
    overrides = [*TINY_SPIRAL, "solver=euler", "train.steps=1", "train.device=cpu",
                 f"train.keep_memory={keep}"]
    after = probe("train", json.dumps(overrides), str(tmp_path / "run"))
    assert (after["mapped"] < 20 * MIB) == (keep == "true")


@needs_glibc
@pytest.mark.parametrize("keep", ["true", "false"])
def test_evaluate_on_cpu_follows_the_runs_recipe(tmp_path, keep):
    import odepipe

    overrides = [*TINY_SPIRAL, "solver=euler", "train.steps=1", "train.device=cpu",
                 f"train.keep_memory={keep}"]
    odepipe.train(odepipe.load_recipe("spiral", overrides), str(tmp_path / "run"),
                  progress=False)
    after = probe("evaluate", str(tmp_path / "run"))
    assert (after["mapped"] < 20 * MIB) == (keep == "true")
