"""Launchers of the servers that `make bench` measures, each run as its own process."""
