"""Persistent jobs (video tracking; seed 003's run/status protocol): on-disk store, results log, runner."""
