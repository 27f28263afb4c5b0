"""Routing: who answers which contact. ``model`` and ``matching`` are pure; ``engine`` does the I/O."""
