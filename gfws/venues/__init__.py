"""Venue dialects: each turns one venue's wire protocol into gfws messages."""
