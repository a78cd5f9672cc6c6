"""``python -m kgreason.cli``: the same as the ``kgreason`` command (``torchrun -m kgreason.cli train ...``)."""

from kgreason.cli import main

main()
