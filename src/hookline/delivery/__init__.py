"""Delivery: the worker loop, the HTTP sender, the SSRF guard and request signing."""
