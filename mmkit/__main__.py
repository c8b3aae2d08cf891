"""`python -m mmkit ...` and the `mmkit` console script: see mmkit/cli.py."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
