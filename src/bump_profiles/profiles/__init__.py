"""Profiles: write, update and refresh a user's profile from their history, and describe what was written."""
