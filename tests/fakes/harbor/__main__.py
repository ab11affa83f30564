"""``python -m tests.fakes.harbor`` (or ``python tests/fakes/harbor``) runs the fake."""

try:
    from .server import main
except ImportError:  # run as a directory: server.py sits next to this file on sys.path
    from server import main

raise SystemExit(main())
