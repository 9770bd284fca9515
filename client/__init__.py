"""The `modelstream` CLI: local Kafka, the job, publishing models and data, reading scores."""
