"""Small training utilities used by the notebooks and by the scripts that build data/models/."""
