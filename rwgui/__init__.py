"""rwgui: restore photos with untrained networks (Deep Image Prior and random-weights loss priors)."""

__version__ = "0.1.0"
