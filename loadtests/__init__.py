"""Locust users per persona and level, load shapes, the SLO gate, reports."""
