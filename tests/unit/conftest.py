"""Make the collection importable as ansible_collections.backendai.cluster in unit tests."""

import pathlib
import sys

_COLLECTIONS = pathlib.Path(__file__).resolve().parents[2] / ".collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))
