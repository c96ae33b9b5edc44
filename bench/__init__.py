"""The performance harness behind `make bench` (run it with ``python -m bench``)."""
