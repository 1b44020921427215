"""pytest plugins registered by tests/conftest.py (real local servers)."""
