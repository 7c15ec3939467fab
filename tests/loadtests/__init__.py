"""Tests of the load suites."""
