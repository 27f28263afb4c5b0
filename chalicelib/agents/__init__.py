"""Agents: their profile and presence, their WebSocket connections, and what they do with offers."""
