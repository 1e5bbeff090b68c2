"""Pictures of convolution: animations of any configuration and static figures, drawn from the engine's numbers.

matplotlib and Pillow are imported on first use (the ``viz`` extra:
``pip install "convlab[viz]"``); importing this package needs neither.
"""

from __future__ import annotations

__all__: list[str] = []
