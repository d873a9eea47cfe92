"""The Cloudflare API v4 DNS endpoints, served on loopback (api.py); ``python -m standins.cloudflare`` serves them
on a chosen address for the lab and Molecule. See README.md for the upstream evidence it follows."""
from .api import ALL_PERMISSIONS, API_PREFIX, DEFAULT_TOKEN, CloudflareAPIServer

__all__ = ["ALL_PERMISSIONS", "API_PREFIX", "DEFAULT_TOKEN", "CloudflareAPIServer"]
