"""The explorer's modules import without the web extra (the doctests of src/convlab collect them), and using it
without FastAPI is an ImportError naming the extra. Runs whether or not FastAPI is installed (it is hidden)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules.update(dict.fromkeys(["fastapi", "pydantic", "starlette", "uvicorn"]))  # None: ImportError on import
import convlab.explorer, convlab.explorer.app, convlab.explorer.cli, convlab.explorer.images
import convlab.explorer.measure, convlab.explorer.network, convlab.explorer.playground
import convlab.explorer.screenshots, convlab.explorer.training
try:
    convlab.explorer.create_app()
except ImportError as exc:
    print("refused:", exc)
from convlab.cli import main
print("serve:", main(["serve"]))
"""


def test_explorer_imports_without_the_web_extra():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'refused: the explorer needs FastAPI and uvicorn: pip install "convlab[web]"' in done.stdout
    assert "serve: 2" in done.stdout and 'pip install "convlab[web]"' in done.stderr
