"""Wire-protocol emulators of external services, used by the test suite; ``kit`` is what they share."""
