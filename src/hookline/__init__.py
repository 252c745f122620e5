"""Hookline: self-hosted webhook delivery.

The server lives in the sub-packages (api, delivery, store); tenants only need
``hookline.receiver`` to verify what Hookline sends them.
"""

__version__ = "0.1.0"
