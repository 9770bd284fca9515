"""The PyFlink job: Kafka sources and sink, keyed co-process wiring, adapters over modelstream.serving."""
