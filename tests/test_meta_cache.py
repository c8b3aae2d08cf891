"""mmkit.models._meta reads a model folder's mmkit.json once, and again when the file changes: the domain check asks
for it on every task call of a model loaded from a folder (domain_notices.finetuned_from)."""
import json
import os

import pytest

from mmkit import models


def test_mmkit_json_is_read_once_and_again_when_it_changes(tmp_path, monkeypatch):
    f = tmp_path / "mmkit.json"
    f.write_text(json.dumps({"finetuned": True, "base": "shapes-clip"}))
    reads = []
    real = models.json.loads
    monkeypatch.setattr(models.json, "loads", lambda text: reads.append(1) or real(text))
    assert models._meta(tmp_path)["base"] == "shapes-clip"
    assert models._meta(tmp_path)["base"] == "shapes-clip"
    assert len(reads) == 1
    f.write_text(json.dumps({"finetuned": True, "base": "shapes-blip-caption", "added_words": ["orange"]}))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))  # a later time, even on coarse clocks
    assert models._meta(tmp_path)["base"] == "shapes-blip-caption" and len(reads) == 2
    with pytest.raises(TypeError):
        models._meta(tmp_path)["base"] = "changed"  # what everyone shares is read-only


def test_missing_broken_or_non_object_files_read_as_empty(tmp_path):
    assert models._meta(tmp_path) == {}
    (tmp_path / "mmkit.json").write_text("{not json")
    assert models._meta(tmp_path) == {}
    (tmp_path / "mmkit.json").write_text("[1, 2]")
    assert models._meta(tmp_path) == {}
