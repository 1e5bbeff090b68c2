"""The layers of docs/architecture.md hold: no module imports upward across them.

Every ``import`` in the package, at module level or inside a function (a lazy
import is still a dependency), is resolved to the top-level part of convlab
it names and checked against the map below, which is the one of
docs/architecture.md. A failure names the importing file, the line and both
layers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "convlab"

#: Layer of each top-level part of convlab, lowest first (docs/architecture.md, "The layers").
LAYERS: dict[str, int] = {
    "spec": 0,
    "shapes": 0,
    "costs": 0,
    "_files": 0,
    "ops": 1,
    "functional": 1,
    "data": 1,
    "nn": 2,
    "optim": 2,
    "models": 3,
    "examples": 3,
    "analysis": 4,
    "interop": 5,
    "bench": 6,
    "train": 6,
    "viz": 6,
    "cli": 7,
    "explorer": 7,
    "demo": 7,
    "__init__": 7,
    "__main__": 7,
}


def _part(module: str) -> str | None:
    """The top-level part of ``convlab.x.y`` (``'x'``), or None outside convlab."""
    pieces = module.split(".")
    if pieces[0] != "convlab":
        return None
    return pieces[1] if len(pieces) > 1 else "__init__"


def _imports(path: Path, package_root: Path = PACKAGE) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import in ``path`` (a file under ``package_root``)."""
    relative = path.relative_to(package_root.parent).with_suffix("")
    package = list(relative.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names = [base] if node.module else [f"{base}.{alias.name}" for alias in node.names]
            found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()}
    assert parts <= set(LAYERS), f"parts missing from the layer map: {sorted(parts - set(LAYERS))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_import(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    level = LAYERS[own]
    upward = []
    for line, module in _imports(path):
        part = _part(module)
        if part is None or part == own:
            continue
        if LAYERS[part] > level:
            upward.append(f"line {line}: imports {module} ({part}, layer {LAYERS[part]}) from {own} "
                          f"(layer {level})")
    assert not upward, f"{path.relative_to(ROOT)} imports upward:\n" + "\n".join(upward)


def test_the_map_in_the_docs_names_every_layer():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for part in LAYERS:
        if part.startswith("__"):
            continue
        assert re.search(rf"\b{part}\b", text), f"docs/architecture.md does not mention {part}"


def test_the_checker_sees_an_upward_import(tmp_path):
    # The test above must be able to fail: a lazy relative import of the CLI from the engine is found.
    probe = tmp_path / "convlab" / "ops" / "algorithms" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from ...cli import main\n    import convlab.bench\n", encoding="utf-8")
    found = _imports(probe, tmp_path / "convlab")
    assert found == [(2, "convlab.cli"), (3, "convlab.bench")]
    assert [LAYERS[_part(m)] for _, m in found] == [7, 6]
