"""Settings come from one pydantic-settings object, read from the environment when asked."""

from __future__ import annotations

from pathlib import Path

from tokenfab.settings import env_name, load_settings


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TOKENFAB_DATA_DIR", "/srv/data")
    monkeypatch.setenv("TOKENFAB_SERVER", "http://factory:8000")
    monkeypatch.setenv("TOKENFAB_TOKEN", "")  # empty counts as unset
    monkeypatch.delenv("TOKENFAB_BOOTSTRAP_TOKEN", raising=False)
    settings = load_settings()
    assert settings.data_dir == Path("/srv/data") and settings.server == "http://factory:8000"
    assert settings.token is None and settings.bootstrap_token is None
    assert env_name("bootstrap_token") == "TOKENFAB_BOOTSTRAP_TOKEN"


def test_the_data_folder_and_the_client_read_the_settings(monkeypatch, tmp_path):
    from tokenfab.control.client import resolve
    from tokenfab.traces.llm import shared_data_dir

    monkeypatch.setenv("TOKENFAB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TOKENFAB_SERVER", "http://factory:8000")
    monkeypatch.setenv("TOKENFAB_TOKEN", "tf_000000000000_secret")
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved credentials
    assert shared_data_dir() == tmp_path
    assert resolve(None, None) == ("http://factory:8000", "tf_000000000000_secret")
