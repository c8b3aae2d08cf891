"""load_model's cache: bounded by a count and by bytes, least recently used dropped first."""
import pytest

import mmkit
from mmkit import models


@pytest.fixture
def fresh_cache():
    """An empty cache with no bound, and the cache and bound as they were afterwards."""
    before, limit = dict(models.CACHE.entries), dict(models.CACHE.limit)
    models.clear_cache()
    models.set_cache_limit(None, None)
    yield
    models.clear_cache()
    models.CACHE.limit.update(limit)
    for key, m in before.items():
        models.CACHE.get(key, lambda: m)


def names():
    return [(e["name"].rsplit("/", 1)[-1].split("-tiny")[0], e["attention"]) for e in models.cache_info()]


def test_count_bound_drops_the_least_recently_used_and_attention_copies_count(fresh_cache, model_dirs):
    clip, vilt, blip = (str(model_dirs(f)) for f in ("clip", "vilt-vqa", "blip-caption"))
    models.set_cache_limit(models=2)
    a = mmkit.load_model(clip)
    b = mmkit.load_model(vilt)
    assert mmkit.load_model(clip) is a  # a hit makes clip the most recently used
    mmkit.load_model(blip)  # a third model: vilt, the least recently used, goes
    assert names() == [("clip", False), ("blip-caption", False)]
    assert mmkit.load_model(vilt) is not b  # loaded again, a new object
    a2 = mmkit.load_model(blip, attention=True)  # the eager copy is a second model and counts
    assert names() == [("vilt-vqa", False), ("blip-caption", True)]
    image = mmkit.data.ShapesWorld(1, seed=0).images[0]
    assert a2.attention and len(mmkit.zero_shot(a, image, ["red", "blue"])) == 2  # a dropped model still works
    models.set_cache_limit(models=1)  # tightening the bound evicts at once
    assert names() == [("blip-caption", True)]


def test_byte_bound_counts_each_model_once_and_keeps_the_newest(fresh_cache, model_dirs):
    clip, vilt = str(model_dirs("clip")), str(model_dirs("vilt-vqa"))
    a = mmkit.load_model(clip)
    size = models.model_bytes(a)
    params = sum(p.numel() for p in a.model.parameters())  # fp32: 4 bytes each, plus the buffers
    assert 4 * params <= size <= 4 * params + 8 * sum(b.numel() for b in a.model.buffers())  # int64 ids at most
    assert models.cache_info()[0]["bytes"] == size
    b = mmkit.load_model(vilt)
    both = size + models.model_bytes(b)
    models.set_cache_limit(max_bytes=both)  # both fit
    assert len(names()) == 2
    models.set_cache_limit(max_bytes=both - 1)  # one byte short: the least recently used goes
    assert names() == [("vilt-vqa", False)]
    models.set_cache_limit(max_bytes=1)  # smaller than any model: the newest is still kept
    assert names() == [("vilt-vqa", False)]
    mmkit.load_model(clip)
    assert names() == [("clip", False)]


def test_default_bound_is_half_the_memory_and_bad_bounds_name_the_fix(fresh_cache):
    models.set_cache_limit()
    assert models.CACHE.limit == {"models": None, "bytes": "half of RAM"}
    from mmkit.model_cache import total_ram

    assert 0 < models.CACHE.byte_limit() < total_ram()
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(mmkit.InputError, match="models="):
            models.set_cache_limit(models=bad)
    for bad in (0, -5, 1.5, "lots"):
        with pytest.raises(mmkit.InputError, match="max_bytes=.*GiB"):
            models.set_cache_limit(max_bytes=bad)
