"""The light leaves of the package face: torch-free imports, and damaged outputs marked for a rebuild."""

import os
import subprocess
import sys

import pytest

from nam_core.intermediates import mark_damaged_outputs


def test_io_and_settings_import_without_torch():
    code = ("import sys, nam_core.io, nam_core.engine.settings; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_damaged_outputs_are_marked_or_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results/c/fit").mkdir(parents=True)
    (tmp_path / "results/c/fit/inputs.npz").write_bytes(b"junk")  # not a zip archive
    (tmp_path / "results/c/fit/seed0.tsv").write_text("a\tb\n")  # whole
    (tmp_path / "results/c/cohort.tsv").write_text("")  # empty, written by a rule without inputs
    (tmp_path / "results/other").mkdir()
    (tmp_path / "results/other/inputs.npz").write_bytes(b"junk")  # another cohort: left alone
    outputs = [("results/c/fit/inputs.npz", "assemble", True), ("results/c/fit/seed{seed}.tsv", "fit", True),
               ("results/c/cohort.tsv", "make_cohort", False), ("results/other/inputs.npz", "assemble", True)]
    messages = mark_damaged_outputs(outputs, "results/c/")
    assert len(messages) == 2
    assert messages[0].startswith("results/c/fit/inputs.npz is not a complete .npz")
    assert "marked it out of date: rule assemble rebuilds it" in messages[0]
    assert "removed it: rule make_cohort rebuilds it when it is needed" in messages[1]
    assert os.stat("results/c/fit/inputs.npz").st_mtime == 0
    assert not os.path.exists("results/c/cohort.tsv")
    assert os.stat("results/c/fit/seed0.tsv").st_mtime > 0 and os.stat("results/other/inputs.npz").st_mtime > 0


def test_read_yaml_config_names_the_file_line_and_tab(tmp_path):
    from nam_core.errors import NAMInputError
    from nam_core.io import read_yaml_config

    path = tmp_path / "config.yaml"
    path.write_text("cohort: small\ndemo:\n\tenabled: true\n")
    with pytest.raises(NAMInputError, match=r"(?s)config\.yaml is not valid YAML at line 3.*tab"):
        read_yaml_config(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(NAMInputError, match="must hold a mapping"):
        read_yaml_config(path)
    path.write_text("cohort: small\n")
    assert read_yaml_config(path) == {"cohort": "small"}
    with pytest.raises(NAMInputError, match="absent.yaml does not exist.*pass --configfile"):
        read_yaml_config(tmp_path / "absent.yaml", default_of="snakemake")
