"""Model runtimes: one ``Model`` contract (model.base), one module per format, a registry (model.registry)."""
