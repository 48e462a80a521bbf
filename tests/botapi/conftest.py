"""The fake server's own tests use its fixtures."""

from tests.botapi.fixtures import botapi, manual_clock

__all__ = ["botapi", "manual_clock"]
