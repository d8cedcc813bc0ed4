"""Connector config builders and the Kafka Connect dynamic provider."""
