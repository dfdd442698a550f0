"""Small shared utilities: counting, logging, checkpointing, seeding."""
