"""Qt-free core: image I/O, problems, priors, engine. Never imports Qt."""
