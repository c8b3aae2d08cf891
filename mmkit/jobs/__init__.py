"""Collection jobs: caption, embed, answer or classify every image of a folder into one file, resumably.

    import mmkit
    res = mmkit.jobs.run("caption", "shapes-blip-caption", "photos/", "captions.parquet")
    res.summary()  # '1000 images in 25.1 s (39.8 images/s); 2 unreadable (error rows); ...'
    rows = mmkit.jobs.read_output("captions.parquet")

Work is written in shards as it goes (`<out>.parts/`); a killed job rerun with resume=True does only the
missing shards, in the same batches, so the result equals an uninterrupted run. Unreadable files become
rows with an "error". engine="ray" runs the same job on Ray Data (docs/SCALE.md).
"""
from .output import read_output
from .run import ENGINES, JobResult, run
from .source import decode, list_images
from .tasks import TASKS

__all__ = ["ENGINES", "JobResult", "TASKS", "decode", "list_images", "read_output", "run"]
