"""Pushing to agents over the WebSocket API."""
