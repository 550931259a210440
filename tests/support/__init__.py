"""Shared helpers for tests that drive a real ``kybern server`` subprocess."""
