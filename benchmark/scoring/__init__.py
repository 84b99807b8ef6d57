"""Scoring: collapse ratios, the normalised score with its interval, and the plots (one module each)."""
