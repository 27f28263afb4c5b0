"""The server side of phone calls: TwiML the app returns and the call's lifecycle (issue 13)."""
