"""Checks run with the official Python client pinned to 32.x (see test_client_versions.py)."""
