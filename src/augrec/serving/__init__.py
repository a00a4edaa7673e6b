"""Online serving: the one `Recommender` object behind the HTTP (BentoML) and gRPC adapters.

- `schemas`: typed requests and responses, validated once for both protocols;
- `recommender`: history from Feast + model scores + masks and filters -> top-k, fallbacks;
- `online`: feature-store reads and event pushes that degrade instead of failing;
- `batching`: opportunistic batching of scoring across concurrent requests;
- `loading`: a registered version or a run directory -> a loaded model;
- `config`: `ServingConfig`, carried to BentoML workers as environment variables;
- `cli`: `augrec serve`.

The adapters live in `services/` (`augrec.services`). Importing this package is free.
"""
