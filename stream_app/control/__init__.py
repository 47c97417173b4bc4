"""Model control: commands on the control topic, applied by every worker between two batches."""
