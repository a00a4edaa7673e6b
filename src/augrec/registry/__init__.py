"""Run lineage, the model registry, aliases and the validation gate (ARCHITECTURE section 7).

- `manifest`: the `manifest.json` every training run writes (data fingerprint, configs,
  seeds, code and library versions, timings).
- `aliases`: `production`/`staging`-style pointers with history, atomic and locked.
- `store`: immutable registered versions on top of the BentoML model store.
- `gate`: the checks a candidate run must pass before it is registered and promoted.

BentoML is imported inside the functions that need it; importing this package is free.
"""
