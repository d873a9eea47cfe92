"""The Cloudflare R2 stand-in (see README.md): moto's S3 server (server.py), with a strict layer in front that
refuses the lifecycle requests R2 refuses (strict.py). ``python -m standins.r2`` serves them on a chosen address."""
from .server import R2, set_auth, start_moto
from .strict import StrictR2, r2_refusal

__all__ = ["R2", "StrictR2", "r2_refusal", "set_auth", "start_moto"]
