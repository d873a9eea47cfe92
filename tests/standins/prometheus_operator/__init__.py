"""Stand-in for prometheus-operator's Prometheus controller and the StatefulSet controller under it (tests only)."""
