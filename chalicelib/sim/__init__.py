"""The routing lab's simulator: the real router on a virtual clock, against Erlang bounds and baselines.

``switchboard simulate SCENARIO.yaml`` runs a scenario (``scenario.py``; standard ones in ``scenarios/``)
through ``simulator.py`` (the router of ``routing.memory.world`` with simulated customers and agents),
summarises it per queue and channel beside the Erlang C / Erlang A bound for the same load (``erlang.py``)
and writes Markdown, JSON and plots (``report.py``). ``baselines.py`` holds the longest-idle and round-robin
policies the router is measured against; ``bench_rows`` gives ``make bench`` its table.
"""
