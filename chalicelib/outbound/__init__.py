"""Messages to customers: agents' replies and Switchboard's own messages, queued and sent on their channel.

- ``outbox``: queue a reply (or a system message) in the customer's timeline and on the outbox
  queue; the outbox Lambda's record handler that sends it exactly once per claim; status updates
  that reach the timeline.
- ``destinations``: where a message goes (provider, address, our sender, e-mail threading), read
  from what the customer last sent on that channel.
- ``senders``: what every provider call shares (results, the two kinds of failure, HTTP);
  ``twilio``, ``meta``, ``telegram`` and ``ses`` are one module per provider.
"""
