"""pytest fixtures for code that uses genesys_auth, registered through the ``pytest11`` entry
point when the package is installed:

- ``genesys_emulator``: an ``Emulator`` with one client (``GENESYS_TEST_CLIENT_ID`` and
  ``GENESYS_TEST_CLIENT_SECRET`` of this module), stopped after the test;
- ``genesys_provider``: a ``TokenProvider`` for that client on that emulator, whose clock moves
  with the emulator's ``advance_clock``.
"""

from __future__ import annotations

from typing import Iterator

import pytest

import genesys_auth

GENESYS_TEST_CLIENT_ID = "pytest-client"
GENESYS_TEST_CLIENT_SECRET = "pytest-secret"


@pytest.fixture
def genesys_emulator() -> Iterator[genesys_auth.Emulator]:
    """An emulator with one client, for the test's duration."""
    with genesys_auth.Emulator(
        clients={GENESYS_TEST_CLIENT_ID: GENESYS_TEST_CLIENT_SECRET}
    ) as emu:
        yield emu


@pytest.fixture
def genesys_provider(genesys_emulator: genesys_auth.Emulator) -> genesys_auth.TokenProvider:
    """A provider for the emulator's client, on the emulator's clock."""
    return genesys_auth.TokenProvider(
        client_id=GENESYS_TEST_CLIENT_ID,
        client_secret=GENESYS_TEST_CLIENT_SECRET,
        region=genesys_emulator.base_url,
        clock=genesys_emulator,
    )
