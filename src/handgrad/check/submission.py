"""What is checked: a file, a folder, a zip or a module, copied into the sandbox's own folder.

Also reads the submission's source (in this process, before anything runs) for
signs that its gradients are not hand-written: imports of autodiff libraries,
``torch.autograd``, tensors made to require grad. Code under
``if __name__ == "__main__":`` is the student's own testing and is not read.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import re
import shutil
import stat
import sys
import zipfile
from pathlib import Path

AUTODIFF = ("handgrad", "jax", "autograd", "tensorflow", "tinygrad", "micrograd", "mxnet", "paddle", "functorch")
SKIP = {"__pycache__", ".git", ".venv", "venv", "node_modules", "__MACOSX"}
MAX_FILES = 500
MAX_BYTES = 20 << 20


def resolve_target(target: str | os.PathLike) -> tuple[str, str]:
    """('file' | 'folder' | 'zip', absolute path) or ('module', dotted name); ValueError when none fits."""
    text = os.fspath(target)
    path = Path(text)
    if path.is_file():
        return ("zip" if path.suffix == ".zip" else "file"), str(path.resolve())
    if path.is_dir():
        return "folder", str(path.resolve())
    if path.suffix in (".py", ".zip") or os.sep in text or "/" in text or path.exists():
        raise ValueError(f"no such Python file, folder or zip: {text}")
    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", text):
        if importlib.machinery.PathFinder.find_spec(text.split(".")[0], [os.getcwd(), *sys.path]) is None:
            raise ValueError(f"no file or importable module named {text!r} (looked in the current directory and "
                             "on sys.path)")
        return "module", text
    raise ValueError(f"expected a Python file, a folder, a zip or a module name, got {text!r}")


def _copy_file(src: Path, dst: Path, budget: list[int]) -> None:
    info = os.lstat(src)
    if not stat.S_ISREG(info.st_mode):
        return  # links and devices are not copied
    budget[0] -= 1
    budget[1] -= info.st_size
    if budget[0] < 0 or budget[1] < 0:
        raise ValueError(f"the submission is larger than {MAX_FILES} files or {MAX_BYTES >> 20} MiB")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)


def _copy_tree(src: Path, dst: Path, budget: list[int]) -> None:
    for entry in sorted(src.iterdir()):
        if entry.name in SKIP or entry.is_symlink():
            continue
        if entry.is_dir():
            _copy_tree(entry, dst / entry.name, budget)
        else:
            _copy_file(entry, dst / entry.name, budget)


def _unzip(src: Path, dst: Path) -> None:
    """Extract a zip with caps on count and size; no absolute paths, no '..', no links."""
    with zipfile.ZipFile(src) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_FILES or sum(m.file_size for m in members) > MAX_BYTES:
            raise ValueError(f"{src.name} unpacks to more than {MAX_FILES} files or {MAX_BYTES >> 20} MiB")
        for m in members:
            parts = Path(m.filename).parts
            if m.filename.startswith("/") or ".." in parts or any(p in SKIP for p in parts):
                continue
            if stat.S_ISLNK(m.external_attr >> 16):
                continue
            target = dst.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(m) as fin, open(target, "wb") as fout:
                shutil.copyfileobj(fin, fout)


def main_file(folder: Path) -> Path:
    """The file holding the homework in a folder: mlp.py, the only .py file, or the one defining class MLP."""
    files = sorted(p for p in folder.rglob("*.py") if not set(p.relative_to(folder).parts) & SKIP)
    named = [p for p in files if p.name == "mlp.py"]
    if named:
        return min(named, key=lambda p: len(p.parts))
    if len(files) == 1:
        return files[0]
    defining = [p for p in files if re.search(r"^class\s+MLP\b", p.read_text(errors="replace"), re.M)]
    if len(defining) == 1:
        return defining[0]
    raise ValueError(f"{folder.name}: no mlp.py, and {len(defining) or 'no'} files define class MLP")


def prepare(kind: str, target: str, dest: Path, siblings: bool = True) -> dict[str, str]:
    """Copy the submission into ``dest``; returns the worker's request fields (``file`` or ``module``).

    A file brings the .py files beside it (``siblings``), so its own imports work."""
    budget = [MAX_FILES, MAX_BYTES]
    if kind == "file":
        src = Path(target)
        _copy_file(src, dest / src.name, budget)
        if siblings:
            for other in sorted(src.parent.glob("*.py")):
                if other != src:
                    _copy_file(other, dest / other.name, budget)
        return {"file": src.name}
    if kind in ("folder", "zip"):
        if kind == "folder":
            _copy_tree(Path(target), dest, budget)
        else:
            _unzip(Path(target), dest)
        main = main_file(dest)
        if main.parent != dest:  # its own folder comes first on the path: move the copy up
            for entry in list(main.parent.iterdir()):
                if not (dest / entry.name).exists():
                    entry.rename(dest / entry.name)
            main = dest / main.name
        return {"file": main.name}
    spec = importlib.machinery.PathFinder.find_spec(target.split(".")[0], [os.getcwd(), *sys.path])
    if spec is None or not spec.origin:
        raise ValueError(f"cannot locate module {target!r}")
    if spec.submodule_search_locations:
        top = Path(next(iter(spec.submodule_search_locations)))
        _copy_tree(top, dest / top.name, budget)
    else:
        _copy_file(Path(spec.origin), dest / Path(spec.origin).name, budget)
    return {"module": target}


# ---------------------------------------------------------------- autograd in the source
class _Scan(ast.NodeVisitor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.found: list[str] = []

    def note(self, node: ast.AST, what: str) -> None:
        self.found.append(f"{self.name}:{getattr(node, 'lineno', '?')} {what}")

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test).replace("'", '"')
        if test in ('__name__ == "__main__"', '"__main__" == __name__'):
            return  # the student's own testing
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._module(node, node.module or "")
        if node.module == "torch" and any(a.name in ("autograd", "func") for a in node.names):
            self.note(node, "imports torch.autograd")

    def _module(self, node: ast.AST, name: str) -> None:
        top = name.split(".")[0]
        if top in AUTODIFF:
            self.note(node, f"imports {name}")
        elif name.startswith(("torch.autograd", "torch.func")):
            self.note(node, f"imports {name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ("autograd", "requires_grad_", "func") and ast.unparse(node.value) == "torch" \
                or node.attr == "requires_grad_":
            self.note(node, f"uses {ast.unparse(node)}")
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg == "requires_grad" and not (isinstance(node.value, ast.Constant) and not node.value.value):
            self.note(node.value, "makes a tensor that requires grad")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            if isinstance(t, ast.Attribute) and t.attr == "requires_grad":
                self.note(node, "sets requires_grad")
        self.generic_visit(node)


def scan_autograd(path: Path) -> list[str]:
    """Evidence of autograd in one source file: 'mlp.py:3 imports jax', ... (nothing when it does not parse)."""
    try:
        tree = ast.parse(path.read_text(errors="replace"))
    except (SyntaxError, ValueError, OSError):
        return []
    scan = _Scan(path.name)
    scan.visit(tree)
    return scan.found
