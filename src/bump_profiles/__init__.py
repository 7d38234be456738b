"""bump-profiles: self-supervised user profiles (BUMP) and their evaluation for personalization."""

__version__ = "0.1.0"
