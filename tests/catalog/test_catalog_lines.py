"""The catalog is read with libyaml, once per process, and its errors still name the file and line."""

from __future__ import annotations

import pytest

from tokenfab.catalog.load import load_catalog
from tokenfab.io.yamlfile import InputError, load_located_yaml


def test_bad_user_catalog_entry_names_file_and_line(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "kind: regions\nentries:\n  - name: r1\n    description: a region\n    price_usd_per_kwh: cheap\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        load_catalog([tmp_path])
    assert str(err.value).startswith(f"{tmp_path / 'mine.yaml'}:")
    assert ":5: entries[0].price_usd_per_kwh" in str(err.value) or ":3: entries[0]" in str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\nb: [\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"x\.yaml:\d+: malformed YAML"):
        load_located_yaml(path)


def test_lines_of_nested_values(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b:\n    - 1\n    - c: 2\n", encoding="utf-8")
    doc = load_located_yaml(path)
    assert doc.data == {"a": {"b": [1, {"c": 2}]}}
    assert doc.line_of(["a", "b", 1, "c"]) == 4


def test_catalog_is_parsed_once():
    assert load_catalog() is load_catalog()
