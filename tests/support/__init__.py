"""Test helpers (a Cloudflare API v4 test server, ...)."""
