"""Routing: who answers which contact. ``model``, ``matching``, ``rules``, ``hours`` and ``router`` are pure;
``router.Router`` works over the ports of ``ports``; ``engine`` wires the AWS adapters, ``memory`` the in-memory
ones."""
