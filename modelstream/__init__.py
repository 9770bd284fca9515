"""modelstream core: the serving logic, plain Python, with no Flink or Kafka in it.

The PyFlink job (jobs/) and the CLI (client/) are thin adapters around these modules.
"""
