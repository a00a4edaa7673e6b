"""augrec.pipelines: thin adapters over the core library (see the README's layout)."""
