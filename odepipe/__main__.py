"""``python -m odepipe`` (and ``torchrun -m odepipe run ...``)."""

from odepipe.cli import main

if __name__ == "__main__":
    main()
