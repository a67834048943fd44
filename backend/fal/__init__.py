"""The hosted backend: FLUX.2 [dev] LoRA edit on fal, through the unmodified fal-client.

- backend.py: `FalBackend` (a run: references, the transport, results, downloads) and
  `fal_arguments`, the JSON fal gets.
- transports.py: the "stream" and "queue" transports.
- retries.py: what is tried again when fal says "not now", and when.
- http.py: fal's HTTP answers as our errors; fal-client's set-up (no blind retries).
- config.py: `FalSettings`, the operator's settings; options.py: `FalOptions`, a run's.
"""

from .backend import FalBackend, fal_arguments
from .config import DEFAULT_ENDPOINT, FalSettings
from .http import point_fal_client_at
from .options import FalOptions

__all__ = ["DEFAULT_ENDPOINT", "FalBackend", "FalOptions", "FalSettings", "fal_arguments", "point_fal_client_at"]
