"""Loopback fakes of the third-party APIs Switchboard calls (the AWS ones are moto)."""
