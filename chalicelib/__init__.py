"""Switchboard: serverless omnichannel routing. The Lambda code lives here; `app.py` only wires it."""
