"""The embedded Altegio look-alike: a loopback HTTP server with deterministic synthetic data.

```python
with serve(SandboxConfig(seed=7)) as server:
    server.base_url, server.credentials, server.dataset, server.stats()
```
"""

from pipelines.altegio.sandbox.config import Faults, SandboxConfig, SandboxCredentials
from pipelines.altegio.sandbox.data import SandboxDataset
from pipelines.altegio.sandbox.server import SandboxServer, serve

__all__ = [
    "Faults",
    "SandboxConfig",
    "SandboxCredentials",
    "SandboxDataset",
    "SandboxServer",
    "serve",
]
