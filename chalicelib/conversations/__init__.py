"""Customers, their identities on each channel, conversations and the messages in them."""
