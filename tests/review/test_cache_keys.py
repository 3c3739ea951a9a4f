"""Cached helpers must key volumes by file content, never by sampling an array argument."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
from .conftest import write_volume

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "dashboards"))

SCALAR_ANNOTATIONS = {"str", "int", "float", "bool"}


def _cached_functions() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted([*(REPO / "dashboards").glob("*.py"), *(REPO / "medgan" / "review").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any("cache_data" in ast.unparse(d) or "cache_resource" in ast.unparse(d) for d in node.decorator_list):
                found.append((path.name, node))
    return found


def test_cached_functions_exist() -> None:
    assert len(_cached_functions()) >= 3


@pytest.mark.parametrize("name,function", _cached_functions(), ids=lambda value: value if isinstance(value, str) else value.name)
def test_cached_function_scalar_params(name: str, function: ast.FunctionDef) -> None:
    for argument in function.args.args:
        annotation = ast.unparse(argument.annotation) if argument.annotation else "missing"
        assert "ndarray" not in annotation, f"{name}:{function.name}({argument.arg}: {annotation})"
        assert annotation in SCALAR_ANNOTATIONS, f"{name}:{function.name}({argument.arg}: {annotation})"


@pytest.mark.slow
def test_near_identical_volumes_differ(tmp_path: Path) -> None:
    from ui_cache import cached_slice_png

    from medgan.review.volumes import volume_key

    first = np.zeros((128, 128, 128), dtype=np.float32)
    second = first.copy()
    second[60:64, 60:64, 62:66] = 1000.0  # a 4^3 block on the middle axial slice
    write_volume(tmp_path / "a.nii.gz", first)
    write_volume(tmp_path / "b.nii.gz", second)
    key_a, key_b = volume_key(tmp_path / "a.nii.gz"), volume_key(tmp_path / "b.nii.gz")
    png_a = cached_slice_png(key_a.path, key_a.size, key_a.mtime_ns, key_a.sha256, "axial", 64, 0.0, 1000.0)
    png_b = cached_slice_png(key_b.path, key_b.size, key_b.mtime_ns, key_b.sha256, "axial", 64, 0.0, 1000.0)
    assert png_a != png_b


def test_rewritten_file_new_key(tmp_path: Path) -> None:
    from medgan.review.volumes import volume_key

    path = tmp_path / "a.nii.gz"
    write_volume(path, np.zeros((8, 8, 8)))
    before = volume_key(path)
    write_volume(path, np.ones((8, 8, 8)))
    assert volume_key(path).sha256 != before.sha256


def test_slider_moves_load_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ui_cache

    from medgan.review.volumes import load_display_volume, volume_key

    loads = []

    def counting_load(key):
        loads.append(key.sha256)
        return load_display_volume(key)

    monkeypatch.setattr(ui_cache, "load_display_volume", counting_load)
    array = np.zeros((32, 32, 32), dtype=np.float32)
    array[3, 5, 7] = 17.0  # content unique to this test, so no earlier cache entry matches
    write_volume(tmp_path / "c.nii.gz", array)
    key = volume_key(tmp_path / "c.nii.gz")
    for index in range(32):
        ui_cache.cached_slice_png(key.path, key.size, key.mtime_ns, key.sha256, "axial", index, 0.0, 17.0)
    assert loads == [key.sha256]
