"""The PyFlink job: Kafka sources and sink, keyed co-process wiring, thin adapters over modelstream.serving."""
