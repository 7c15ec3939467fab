"""Tests of the online service hall."""
