"""alexnet-book: a reproducible companion to Krizhevsky, Sutskever & Hinton (2012)."""

import os

# Tensors of 2 MB and more on transparent huge pages (PyTorch's THP_MEM_ALLOC_ENABLE, read once, at
# torch's first allocation): a fresh 74 MB activation then costs ~800 page faults instead of ~18,000,
# and the paper's AlexNet trains ~20% faster on CPU (make bench) with bit-identical results. It takes
# effect when set before torch allocates its first tensor, as importing this package at the top of a
# notebook does; the Makefile sets it for every command. THP_MEM_ALLOC_ENABLE=0 turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"

from .runtime import setup  # noqa: E402  (the one call every notebook starts with)
