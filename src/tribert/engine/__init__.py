"""Training and evaluation: one Lightning system for every separator, run folders, checkpoints."""
