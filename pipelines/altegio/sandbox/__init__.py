"""The embedded Altegio look-alike: a loopback HTTP server with deterministic synthetic data.

```python
with serve(SandboxConfig(seed=7)) as server:
    server.base_url, server.credentials, server.dataset, server.stats()
```
`server.dataset` is the `World`: the generated data plus writes and simulated days.
"""

from pipelines.altegio.sandbox.config import Faults, SandboxConfig, SandboxCredentials
from pipelines.altegio.sandbox.data import SandboxDataset
from pipelines.altegio.sandbox.server import SandboxServer, serve
from pipelines.altegio.sandbox.world import World

__all__ = [
    "Faults",
    "SandboxConfig",
    "SandboxCredentials",
    "SandboxDataset",
    "SandboxServer",
    "World",
    "serve",
]
