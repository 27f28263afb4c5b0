"""One module per channel provider: verify the webhook on its raw bytes, parse it to an ``InboundMessage``."""
