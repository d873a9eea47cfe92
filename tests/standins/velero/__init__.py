"""A stand-in for Velero in tests and the lab: a polling controller and an S3 server (moto).

Test code only; never shipped in the collection. See README.md in this directory.
"""
