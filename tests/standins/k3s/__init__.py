"""A stand-in for K3s in the lab: `k3s` command (server, agent; kubectl is the real one) and a fake Kubernetes API server.

Test code only; never shipped in the collection. See README.md in this directory.
"""
