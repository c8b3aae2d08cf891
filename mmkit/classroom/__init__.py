"""A classroom server: one shared model process that every student's (small) Voila kernel calls.

Voila starts one kernel per visitor. Loading torch and a model in each costs about 3 s and 400 MB, so
thirty students opening the app together would need 12 GB and a minute of CPU before the last page
is usable. Here one process (`ModelServer`) holds the model; a kernel whose environment has
`MMKIT_MODEL_SERVER=http://127.0.0.1:PORT` captions through it (`RemoteCaptioner`) and never imports
torch. `python -m mmkit.classroom` (`make classroom`) starts both: the model server and Voila with a
pool of preheated kernels. Only the standard library is used for the transport (HTTP + JSON).
"""
from .client import ENV, RemoteCaptioner, RemoteMaps, remote_url
from .server import ModelServer

__all__ = ["ENV", "ModelServer", "RemoteCaptioner", "RemoteMaps", "remote_url"]
