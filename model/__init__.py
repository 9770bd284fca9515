"""Model runtimes: one module per format, each implementing modelstream.contract.Model (found by modelstream.registry)."""
