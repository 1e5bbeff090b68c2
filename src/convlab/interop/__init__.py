"""Bridges to other frameworks; each imports its framework lazily (``convlab.interop.torch``)."""
