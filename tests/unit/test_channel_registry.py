"""The channel registry's routes (what app.py registers without importing a channel) say what the adapters say."""

from __future__ import annotations

import json
import subprocess
import sys

from chalicelib.channels import registry


def test_each_endpoint_is_its_adapters_route() -> None:
    for endpoint, adapter in zip(registry.ENDPOINTS, registry.CHANNELS, strict=True):
        assert (endpoint.name, endpoint.path, endpoint.methods, endpoint.content_types) == (
            adapter.name,
            adapter.path,
            tuple(adapter.methods),
            tuple(adapter.content_types),
        )
    assert len({e.name for e in registry.ENDPOINTS}) == len({e.path for e in registry.ENDPOINTS}) == 22


def test_the_registry_imports_no_channel_module() -> None:
    probe = (
        "import json, sys\nfrom chalicelib.channels import registry\nregistry.ENDPOINTS\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('chalicelib.channels.'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["chalicelib.channels.registry"]
