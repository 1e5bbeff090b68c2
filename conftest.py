"""pytest's configuration for the whole repository: the doctests of src/convlab (``--doctest-modules``) and tests/.

Without the ``web`` extra the explorer's request models (pydantic) cannot be imported, so their module is not
collected for doctests (it has none); every other module of convlab imports without optional extras.
"""

collect_ignore: list[str] = []
try:
    import pydantic  # noqa: F401
except ImportError:
    collect_ignore.append("src/convlab/explorer/schemas.py")
