"""The one atomic writer (tokenfab.io.atomic): whole or nothing, mode 0644, no temporary file left behind."""

from __future__ import annotations

import os
import stat

import pytest

from tokenfab.io.atomic import FILE_MODE, atomic_path, open_atomic, write_bytes_atomic, write_text_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_text_and_bytes_land_whole_with_mode_0644(tmp_path):
    target = tmp_path / "sub" / "design.json"
    write_text_atomic(target, '{"a": 1}\n')
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n'
    assert _mode(target) == FILE_MODE == 0o644
    write_bytes_atomic(target, b"\x89PNG")
    assert target.read_bytes() == b"\x89PNG" and _mode(target) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["design.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "rows.csv"
    write_text_atomic(target, "old\n")
    with pytest.raises(RuntimeError), open_atomic(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("stopped midway")
    assert target.read_text(encoding="utf-8") == "old\n"
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("also half", encoding="utf-8")
        raise ValueError("library failed")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.csv"]


def test_streamed_and_library_writes_replace_the_target(tmp_path):
    target = tmp_path / "big.csv"
    with open_atomic(target) as handle:
        for i in range(1000):
            handle.write(f"{i}\n")
        assert not target.exists(), "nothing is visible before the writer closes"
    assert target.read_text(encoding="utf-8").count("\n") == 1000 and _mode(target) == 0o644
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    table_path = tmp_path / "t.parquet"
    with atomic_path(table_path) as tmp:
        assert tmp.parent == tmp_path and tmp != table_path
        pq.write_table(pa.table({"x": [1, 2, 3]}), tmp)
    assert pq.read_table(table_path).column("x").to_pylist() == [1, 2, 3] and _mode(table_path) == 0o644
