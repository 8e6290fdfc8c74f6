"""Fixtures shared by the service's tests."""

from __future__ import annotations

import pytest

from api.app import Settings, create_app
from tests.api.server import LiveServer


@pytest.fixture
def live(tmp_path):
    """Start a server with the given settings; stopped at the end of the test."""
    started = []

    def start(**settings):
        app = create_app(str(tmp_path / f"ws{len(started)}"), settings=Settings(**settings))
        srv = LiveServer(app).__enter__()
        started.append(srv)
        return app, srv.url

    yield start
    for srv in started:
        srv.__exit__(None, None, None)
