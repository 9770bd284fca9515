"""Model runtimes: one module per format, each a modelstream.contract.Model, found by modelstream.registry."""
