"""Durable files: atomic writes and strict JSON (the lowest layer; imports nothing of CollapseLab)."""
