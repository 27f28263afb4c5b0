"""What browsers load: the agent console page, the web-chat widget script and the widget's unsigned entry points.

``pages`` serves ``console.html`` and ``widget.js`` (read once per container);
``visitors`` is the widget's side of the API: a visitor's message goes in
through the same web-chat adapter the signed webhook uses, and the visitor
reads back their own conversation's messages.
"""
