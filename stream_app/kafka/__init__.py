"""Everything that talks to the Kafka-protocol broker: client configs, topics, the local broker."""
