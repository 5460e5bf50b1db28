"""alexnet-book: a reproducible companion to Krizhevsky, Sutskever & Hinton (2012)."""

__version__ = "0.1.0"

from .runtime import setup  # noqa: E402  (the one call every notebook starts with)
