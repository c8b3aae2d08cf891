"""python -m mmkit.testing hub FOLDER | notebooks DIR | skipped NOTEBOOK... (see ci.py)."""
from .ci import main

raise SystemExit(main())
