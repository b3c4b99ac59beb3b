"""The inference gateway."""
