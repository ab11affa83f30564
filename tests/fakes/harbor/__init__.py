"""Fake Harbor v2.0 API for tests (see server.py)."""

from .server import ApiSpec, FakeHarbor, HarborState, main, pytest_fixture

__all__ = ["ApiSpec", "FakeHarbor", "HarborState", "main", "pytest_fixture"]
